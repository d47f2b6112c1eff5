package main

import (
	"bufio"
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is the import path of the whole project.
const module = "github.com/underhood/underhood"

// layers gives every package of the module its layer, by path relative to
// the module root (ARCHITECTURE.md). A package may import only packages of
// strictly lower layers: never sideways, never up. A new package must be
// added here, which is the moment to decide where it belongs.
var layers = map[string]int{
	"":                   0, // the vocabulary: standard library only
	"filter":             1, // pure: the vocabulary only
	"outbound":           1, // the HTTP client for addresses users control; standard library only
	"ratelimit":          1, // counters; the shared Redis store speaks through go-redis
	"sqlstore":           2,
	"sqlstore/sqlite":    3,
	"sqlstore/postgres":  3,
	"sqlstore/storetest": 3,
	"record":             4,
	"record/recordtest":  5, // test helper: a record service over a store
	"auth":               5, // capabilities
	"files":              5,
	"backup":             5,
	"events":             5,
	"mail":               5,
	"mail/mailpittest":   1, // test helper running a real SMTP server; standard library only
	"files/s3test":       1, // test helper running a real S3-compatible server; standard library only
	"rest":               7, // adapters, and the server that mounts them
	"graphql":            7,
	"realtime":           5, // the broker
	"realtime/stream":    6, // its transport, SSE and WebSocket: below rest, which mounts its handlers
	"admin":              7,
	"server":             7,
	"cmd/underhood":      8, // wiring: may import anything
	"e2e":                8,
	"bench":              8,
	"bench/realtime":     8, // the realtime benchmark's client
}

// never lists imports the layering allows but the design forbids: the
// capabilities above record reach the data only through record.Service,
// which alone compiles and enforces rules (ARCHITECTURE: a rule is
// enforced in exactly one place), so they never compile a filter.
var never = map[string][]string{
	"auth":   {"filter"},
	"events": {"filter"},
}

// stdlibOnly are layers that may import nothing outside the standard
// library and the module.
var stdlibOnly = map[string]bool{"": true, "filter": true, "outbound": true, "mail/mailpittest": true, "files/s3test": true}

func TestImportLayers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	// -e lists packages even while some do not compile yet.
	cmd := exec.Command(goBin, "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		imports[fields[0]] = fields[1:]
	}
	if len(imports) < 5 {
		t.Fatalf("go list found only %d packages:\n%s", len(imports), out)
	}
	for _, p := range []string{"", "cmd/underhood", "server", "auth"} {
		if _, ok := imports[join(p)]; !ok {
			t.Errorf("go list did not report %s; is the module path right?", join(p))
		}
	}
	for _, v := range checkLayers(imports) {
		t.Error(v)
	}
}

// checkLayers returns one message per import that breaks the layering.
func checkLayers(imports map[string][]string) []string {
	var bad []string
	for pkg, deps := range imports {
		rel, ok := relative(pkg)
		if !ok {
			continue
		}
		layer, known := layers[rel]
		if !known {
			bad = append(bad, pkg+" has no layer: add it to layers in cmd/underhood/layers_test.go")
			continue
		}
		for _, dep := range deps {
			depRel, inModule := relative(dep)
			switch {
			case !inModule && isStdlib(dep):
			case !inModule:
				if stdlibOnly[rel] {
					bad = append(bad, pkg+" imports "+dep+": it may use the standard library only")
				}
			case depRel == "cmd" || strings.HasPrefix(depRel, "cmd/"):
				bad = append(bad, pkg+" imports "+dep+": nothing imports a command")
			case slices.Contains(never[rel], depRel):
				bad = append(bad, pkg+" imports "+dep+": it never may (never in cmd/underhood/layers_test.go)")
			default:
				depLayer, depKnown := layers[depRel]
				if depKnown && depLayer >= layer {
					dir := "sideways"
					if depLayer > layer {
						dir = "upward"
					}
					bad = append(bad, pkg+" imports "+dep+" "+dir+" (layer "+strconv.Itoa(layer)+" → "+strconv.Itoa(depLayer)+")")
				}
			}
		}
	}
	return bad
}

// relative returns path relative to the module root, and whether path is
// in the module.
func relative(path string) (string, bool) {
	if path == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

func join(rel string) string {
	if rel == "" {
		return module
	}
	return module + "/" + rel
}

// isStdlib reports whether path is a standard library package: its first
// element has no dot.
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// TestCheckLayers makes sure the checker itself catches each kind of
// violation, so a passing TestImportLayers means something.
func TestCheckLayers(t *testing.T) {
	tests := []struct {
		name    string
		imports map[string][]string
		want    string // substring of the one violation; "" = none
	}{
		{"allowed downward imports", map[string][]string{
			join("rest"):            {join("auth"), join("record"), join("filter"), module, "net/http"},
			join("sqlstore/sqlite"): {join("sqlstore"), join("filter"), module, "modernc.org/sqlite"},
			join("cmd/underhood"):   {join("rest"), join("server"), join("sqlstore/sqlite")},
		}, ""},
		{"root imports a third-party package", map[string][]string{module: {"github.com/x/y"}}, "standard library only"},
		{"filter imports sqlstore", map[string][]string{join("filter"): {join("sqlstore")}}, "upward"},
		{"sqlite dialect imports record", map[string][]string{join("sqlstore/sqlite"): {join("record")}}, "upward"},
		{"record imports auth", map[string][]string{join("record"): {join("auth")}}, "upward"},
		{"server imports rest", map[string][]string{join("server"): {join("rest")}}, "sideways"},
		{"auth imports files", map[string][]string{join("auth"): {join("files")}}, "sideways"},
		{"anything imports cmd", map[string][]string{join("e2e"): {join("cmd/underhood")}}, "nothing imports a command"},
		{"unknown package", map[string][]string{join("util"): nil}, "has no layer"},
		{"auth compiles a filter", map[string][]string{join("auth"): {join("filter")}}, "never may"},
		{"events compiles a filter", map[string][]string{join("events"): {join("filter")}}, "never may"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkLayers(tt.imports)
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("checkLayers() = %q, want no violations", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("checkLayers() = %q, want one violation containing %q", got, tt.want)
			}
		})
	}
}

// sqlOwners are the packages (with the packages under them) that may hold
// SQL text: the store, which runs every statement, and the filter
// compiler, which writes the conditions of rules and filters.
var sqlOwners = []string{"sqlstore", "filter"}

// sqlText matches a string literal that is (part of) a SQL statement: a
// statement's first words, or a clause keyword between spaces, in upper
// case as this code base writes SQL. Prose and single words ("SELECT" as
// a Redis command, "WHERE" as a token a parser looks for) do not match.
var sqlText = regexp.MustCompile(`^\s*(SELECT|INSERT INTO|UPDATE|DELETE FROM|WITH)\s|\s(WHERE|FROM|SET|ORDER BY|GROUP BY|AND|OR|IN|JOIN)\s|\b(COUNT|COALESCE|MAX|MIN|LOWER)\(`)

// TestSQLOnlyInTheStore: only sqlstore and filter contain SQL text; every
// other package reaches the tables through them (sqlstore.Cond, the store's
// typed methods, record.Service), so a statement is written, quoted and
// numbered in one place.
func TestSQLOnlyInTheStore(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case rel != "." && strings.HasPrefix(d.Name(), "."), d.Name() == "node_modules", d.Name() == "testdata":
				return filepath.SkipDir
			}
			for _, owner := range sqlOwners {
				if rel == owner {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d Go files under %s", len(files), root)
	}
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		found := sqlLiterals(t, path)
		for _, f := range found {
			t.Errorf("%s:%s holds SQL text %s: only sqlstore and filter may (TestSQLOnlyInTheStore)", rel, f.pos, f.text)
		}
	}
}

type sqlLiteral struct{ pos, text string }

// sqlLiterals returns the string literals of the Go file at path that
// sqlText matches.
func sqlLiterals(t *testing.T, path string) []sqlLiteral {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var out []sqlLiteral
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return true
		}
		text := lit.Value
		if unq, err := strconv.Unquote(lit.Value); err == nil {
			text = unq
		}
		if sqlText.MatchString(text) {
			p := fset.Position(lit.Pos())
			out = append(out, sqlLiteral{pos: strconv.Itoa(p.Line), text: lit.Value})
		}
		return true
	})
	return out
}

// TestSQLTextCheck makes sure sqlText catches the ways SQL was written by
// hand before it moved into sqlstore, and lets prose through, so a
// passing TestSQLOnlyInTheStore means something.
func TestSQLTextCheck(t *testing.T) {
	for _, s := range []string{
		"UPDATE ", "SELECT ", "DELETE FROM ", " WHERE ", " AND ", " = ", "SELECT COUNT(*) FROM ",
		`INSERT INTO t (a) VALUES (?)`, "LOWER(", " SET ", ` ORDER BY created DESC`,
	} {
		if want := strings.TrimSpace(s) != "=" && s != " = "; sqlText.MatchString(s) != want {
			t.Errorf("sqlText.MatchString(%q) = %v, want %v", s, !want, want)
		}
	}
	for _, s := range []string{
		"SELECT", "WHERE", "Failed to update record.", "select a file", "order by the title",
		"The rule and the filter", "CREATE INDEX idx ON t (a)",
	} {
		if sqlText.MatchString(s) {
			t.Errorf("sqlText.MatchString(%q) = true, want false", s)
		}
	}
	// The whole check, on a file written as events/relay.go was.
	dir := t.TempDir()
	path := filepath.Join(dir, "x.go")
	src := "package x\n\nfunc f(p func(int) string) string {\n\treturn `UPDATE cursors SET position = ` + p(1) + ` WHERE name = ` + p(2)\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := sqlLiterals(t, path); len(got) != 2 {
		t.Errorf("sqlLiterals(hand-built UPDATE) = %v, want its 2 literals", got)
	}
}
