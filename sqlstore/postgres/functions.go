package postgres

// functions are the SQL functions the filter language compiles to on
// PostgreSQL, created by a system migration in the schema of the store's
// search_path. They reproduce SQLite's semantics, which are the language's:
// its dynamic values (NULL, numbers, text), its affinity rules, its
// comparison order (NULL, then numbers, then text compared byte by byte),
// its rendering of numbers as text, json_extract and strftime.
//
// A value whose type is known only at run time (a JSON value, a request
// value) is a jsonb scalar in normal form (uh_norm): SQL NULL for null, a
// number (booleans as 1/0), or a string (objects and arrays as their
// compact JSON text).
const functions = `
-- uh_json_string is the JSON string literal of s, as encoding/json writes it.
CREATE OR REPLACE FUNCTION uh_json_string(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT to_json(s)::text
$f$;

-- uh_json_text renders j as compact JSON text, keys in jsonb's order.
CREATE OR REPLACE FUNCTION uh_json_text(j jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	out text;
BEGIN
	CASE jsonb_typeof(j)
	WHEN 'object' THEN
		SELECT '{' || COALESCE(string_agg(uh_json_string(e.k) || ':' || uh_json_text(e.v), ',' ORDER BY e.n), '') || '}'
			INTO out FROM jsonb_each(j) WITH ORDINALITY AS e(k, v, n);
		RETURN out;
	WHEN 'array' THEN
		SELECT '[' || COALESCE(string_agg(uh_json_text(e.v), ',' ORDER BY e.n), '') || ']'
			INTO out FROM jsonb_array_elements(j) WITH ORDINALITY AS e(v, n);
		RETURN out;
	ELSE
		RETURN j::text;
	END CASE;
END
$f$;

-- uh_try_jsonb is s as jsonb, or NULL when s is not JSON.
CREATE OR REPLACE FUNCTION uh_try_jsonb(s text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
	RETURN s::jsonb;
EXCEPTION WHEN others THEN
	RETURN NULL;
END
$f$;

-- uh_norm is j as the SQLite value json_extract returns, in normal form.
CREATE OR REPLACE FUNCTION uh_norm(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
	SELECT CASE jsonb_typeof(j)
		WHEN 'null' THEN NULL
		WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN '1'::jsonb ELSE '0'::jsonb END
		WHEN 'object' THEN to_jsonb(uh_json_text(j))
		WHEN 'array' THEN to_jsonb(uh_json_text(j))
		ELSE j
	END
$f$;

-- uh_values yields the elements of the JSON array j in normal form.
CREATE OR REPLACE FUNCTION uh_values(j jsonb) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$
	SELECT uh_norm(e) FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j ELSE '[]'::jsonb END) AS e
$f$;

-- uh_array_length is json_array_length: NULL for NULL, 0 for a non-array.
CREATE OR REPLACE FUNCTION uh_array_length(j jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE WHEN jsonb_typeof(j) = 'array' THEN jsonb_array_length(j) ELSE 0 END
$f$;

-- uh_extract is json_extract(j, path): object keys, and decimal keys as
-- array indexes.
CREATE OR REPLACE FUNCTION uh_extract(j jsonb, path text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
	k text;
BEGIN
	IF j IS NULL THEN
		RETURN NULL;
	END IF;
	FOREACH k IN ARRAY path LOOP
		CASE jsonb_typeof(j)
		WHEN 'object' THEN
			j := j -> k;
		WHEN 'array' THEN
			IF k !~ '^\+?[0-9]{1,9}$' THEN
				RETURN NULL;
			END IF;
			j := j -> (k::integer);
		ELSE
			RETURN NULL;
		END CASE;
		IF j IS NULL THEN
			RETURN NULL;
		END IF;
	END LOOP;
	RETURN uh_norm(j);
END
$f$;

-- uh_text_num is the number text s reads as under SQLite's numeric
-- affinity, or NULL.
CREATE OR REPLACE FUNCTION uh_text_num(s text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
	s := btrim(s, E' \t\n\r\f\v');
	IF s !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
		RETURN NULL;
	END IF;
	RETURN s::double precision;
EXCEPTION WHEN others THEN
	RETURN NULL;
END
$f$;

-- uh_cast_num is SQLite's CAST(s AS NUMERIC): the longest numeric prefix,
-- else 0.
CREATE OR REPLACE FUNCTION uh_cast_num(s text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	m text;
BEGIN
	m := substring(s from '^[ \t\n\r\f\v]*([+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)');
	IF m IS NULL THEN
		RETURN 0;
	END IF;
	RETURN m::double precision;
EXCEPTION WHEN others THEN
	RETURN 0;
END
$f$;

-- uh_num_text is SQLite's CAST(x AS TEXT) of a number: integers without a
-- fraction, others with 15 significant digits.
CREATE OR REPLACE FUNCTION uh_num_text(x double precision) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	e integer;
	t text;
	m text;
BEGIN
	IF x = trunc(x) AND abs(x) < 9007199254740992 THEN
		RETURN trunc(x)::bigint::text;
	END IF;
	IF x = 'NaN'::double precision OR x = 'Infinity'::double precision OR x = '-Infinity'::double precision THEN
		RETURN NULL;
	END IF;
	-- 15 significant digits, as %.15g
	t := btrim(to_char(x, '9.99999999999999EEEE'));
	e := split_part(t, 'e', 2)::integer;
	m := split_part(t, 'e', 1);
	IF e < -4 OR e >= 15 THEN
		IF position('.' in m) > 0 THEN
			m := rtrim(rtrim(m, '0'), '.');
		END IF;
		RETURN m || 'e' || CASE WHEN e < 0 THEN '-' ELSE '+' END || lpad(abs(e)::text, 2, '0');
	END IF;
	t := x::numeric::text; -- 15 significant digits
	IF position('.' in t) > 0 THEN
		t := rtrim(rtrim(t, '0'), '.');
	END IF;
	RETURN t;
END
$f$;

-- uh_any_text is a value in normal form as text.
CREATE OR REPLACE FUNCTION uh_any_text(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE jsonb_typeof(j)
		WHEN 'number' THEN uh_num_text(j::double precision)
		WHEN 'string' THEN j #>> '{}'
		WHEN 'null' THEN NULL
		ELSE uh_any_text(uh_norm(j))
	END
$f$;

-- uh_any_num is a value in normal form as a number for math functions.
CREATE OR REPLACE FUNCTION uh_any_num(j jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE jsonb_typeof(j)
		WHEN 'number' THEN j::double precision
		WHEN 'string' THEN uh_text_num(j #>> '{}')
		WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN 1 ELSE 0 END
	END
$f$;

-- uh_num_aff applies SQLite's numeric affinity to a value in normal form.
CREATE OR REPLACE FUNCTION uh_num_aff(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE WHEN jsonb_typeof(j) = 'string'
		THEN COALESCE(to_jsonb(uh_text_num(j #>> '{}')), j)
		ELSE j
	END
$f$;

-- uh_text_aff applies SQLite's text affinity to a value in normal form.
CREATE OR REPLACE FUNCTION uh_text_aff(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE WHEN jsonb_typeof(j) = 'number' THEN to_jsonb(uh_num_text(j::double precision)) ELSE j END
$f$;

-- uh_cmp compares two values in normal form as SQLite does: NULL when
-- either is NULL, numbers before text, text byte by byte.
CREATE OR REPLACE FUNCTION uh_cmp(a jsonb, b jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE
		WHEN jsonb_typeof(a) = 'number' AND jsonb_typeof(b) = 'number' THEN
			CASE WHEN a::double precision < b::double precision THEN -1
				WHEN a::double precision > b::double precision THEN 1 ELSE 0 END
		WHEN jsonb_typeof(a) = 'number' THEN -1
		WHEN jsonb_typeof(b) = 'number' THEN 1
		WHEN (a #>> '{}') COLLATE "C" < (b #>> '{}') COLLATE "C" THEN -1
		WHEN (a #>> '{}') = (b #>> '{}') THEN 0
		ELSE 1
	END
$f$;

-- uh_like_pattern makes a trailing lone escape character of a LIKE pattern
-- match itself, as SQLite does, instead of being an error.
CREATE OR REPLACE FUNCTION uh_like_pattern(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE WHEN p ~ '(^|[^\\])(\\\\)*\\$' THEN p || '\' ELSE p END
$f$;

-- Dates. A time is a numeric count of nanoseconds since 1970-01-01 UTC on
-- the proleptic Gregorian calendar with a year 0, as Go's time package
-- and SQLite count, so that every date SQLite handles (Julian day 0, in
-- 4714 BC, to 9999) works.

-- uh_days_from_civil is the day number (since 1970-01-01) of y-m-d; days
-- past the end of the month carry into the next.
CREATE OR REPLACE FUNCTION uh_days_from_civil(y bigint, m bigint, d bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	era bigint;
	yoe bigint;
	doy bigint;
BEGIN
	IF m <= 2 THEN
		y := y - 1;
	END IF;
	era := floor(y / 400.0)::bigint;
	yoe := y - era * 400;
	doy := (153 * (CASE WHEN m > 2 THEN m - 3 ELSE m + 9 END) + 2) / 5 + d - 1;
	RETURN era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
END
$f$;

-- uh_civil is the year, month and day of day number z.
CREATE OR REPLACE FUNCTION uh_civil(z bigint, OUT y bigint, OUT m bigint, OUT d bigint)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	era bigint;
	doe bigint;
	yoe bigint;
	doy bigint;
	mp bigint;
BEGIN
	z := z + 719468;
	era := floor(z / 146097.0)::bigint;
	doe := z - era * 146097;
	yoe := (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy := doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp := (5 * doy + 2) / 153;
	d := doy - (153 * mp + 2) / 5 + 1;
	m := CASE WHEN mp < 10 THEN mp + 3 ELSE mp - 9 END;
	y := yoe + era * 400 + CASE WHEN m <= 2 THEN 1 ELSE 0 END;
END
$f$;

-- uh_pad is Go's %0wd.
CREATE OR REPLACE FUNCTION uh_pad(n bigint, w integer) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $f$
	SELECT CASE WHEN n < 0 THEN '-' || lpad(abs(n)::text, greatest(w - 1, length(abs(n)::text)), '0')
		ELSE lpad(n::text, greatest(w, length(n::text)), '0') END
$f$;

-- uh_time_of is the time of y-m-d h:mi:s plus ns nanoseconds.
CREATE OR REPLACE FUNCTION uh_time_of(y bigint, m bigint, d bigint, h bigint, mi bigint, s bigint, ns numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
BEGIN
	-- months outside 1..12 carry into the year, as time.Date does
	y := y + floor((m - 1) / 12.0)::bigint;
	m := (m - 1) - floor((m - 1) / 12.0)::bigint * 12 + 1;
	RETURN uh_days_from_civil(y, m, d)::numeric * 86400000000000 + (h * 3600 + mi * 60 + s)::numeric * 1000000000 + ns;
END
$f$;

-- uh_parse_time reads the time text SQLite's date functions accept that
-- Underhood stores (as filter.parseSQLiteTime), or NULL.
CREATE OR REPLACE FUNCTION uh_parse_time(v jsonb) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
	s text;
	rest text;
	y bigint;
	mo bigint;
	d bigint;
	h bigint := 0;
	mi bigint := 0;
	sec bigint := 0;
	ms bigint := 0;
	frac text;
	t numeric;
	off bigint;
BEGIN
	IF jsonb_typeof(v) IS DISTINCT FROM 'string' THEN
		RETURN NULL;
	END IF;
	s := v #>> '{}';
	IF s = '' OR substr(s, 1, 1) ~ '[ \t\n\r\f\v]' THEN
		RETURN NULL;
	END IF;
	s := rtrim(s, E' \t\n\r\f\v');
	IF length(s) >= 5 AND substr(s, 3, 1) = ':' THEN
		s := '2000-01-01 ' || s;
	END IF;
	IF octet_length(s) < 10 OR substr(s, 5, 1) <> '-' OR substr(s, 8, 1) <> '-' THEN
		RETURN NULL;
	END IF;
	IF substr(s, 1, 4) !~ '^[+-]?[0-9]+$' OR substr(s, 6, 2) !~ '^[+-]?[0-9]+$' OR substr(s, 9, 2) !~ '^[+-]?[0-9]+$' THEN
		RETURN NULL;
	END IF;
	y := substr(s, 1, 4)::bigint;
	mo := substr(s, 6, 2)::bigint;
	d := substr(s, 9, 2)::bigint;
	IF mo < 1 OR mo > 12 OR d < 1 OR d > 31 THEN
		RETURN NULL;
	END IF;
	rest := substr(s, 11);
	IF rest <> '' THEN
		IF substr(rest, 1, 1) NOT IN (' ', 'T') THEN
			RETURN NULL;
		END IF;
		rest := ltrim(substr(rest, 2), ' ');
		IF length(rest) < 5 OR substr(rest, 3, 1) <> ':' THEN
			RETURN NULL;
		END IF;
		IF substr(rest, 1, 2) !~ '^[+-]?[0-9]+$' OR substr(rest, 4, 2) !~ '^[+-]?[0-9]+$' THEN
			RETURN NULL;
		END IF;
		h := substr(rest, 1, 2)::bigint;
		mi := substr(rest, 4, 2)::bigint;
		rest := substr(rest, 6);
		IF length(rest) >= 3 AND substr(rest, 1, 1) = ':' THEN
			IF substr(rest, 2, 2) !~ '^[+-]?[0-9]+$' THEN
				RETURN NULL;
			END IF;
			sec := substr(rest, 2, 2)::bigint;
			rest := substr(rest, 4);
			IF length(rest) > 1 AND substr(rest, 1, 1) = '.' THEN
				frac := substring(rest from '^\.([0-9]*)');
				rest := substr(rest, 2 + length(frac));
				ms := substr(frac || '000', 1, 3)::bigint;
			END IF;
		END IF;
		IF h > 24 OR mi > 59 OR sec > 59 THEN
			RETURN NULL;
		END IF;
	END IF;
	t := uh_time_of(y, mo, d, h, mi, sec, ms * 1000000);
	rest := ltrim(rest, ' ');
	IF rest = '' OR rest = 'Z' OR rest = 'z' THEN
		RETURN t;
	END IF;
	IF length(rest) = 6 AND substr(rest, 1, 1) IN ('+', '-') AND substr(rest, 4, 1) = ':'
		AND substr(rest, 2, 2) ~ '^[+-]?[0-9]+$' AND substr(rest, 5, 2) ~ '^[+-]?[0-9]+$' THEN
		off := (substr(rest, 2, 2)::bigint * 3600 + substr(rest, 5, 2)::bigint * 60) * 1000000000;
		IF substr(rest, 1, 1) = '+' THEN
			off := -off;
		END IF;
		RETURN t + off;
	END IF;
	RETURN NULL;
END
$f$;

-- uh_time_modifier applies one of SQLite's date modifiers (as
-- filter.applyModifier), or returns NULL.
CREATE OR REPLACE FUNCTION uh_time_modifier(t numeric, modifier text) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	m text := lower(btrim(modifier, E' \t\n\r\f\v'));
	days bigint := floor(t / 86400000000000)::bigint;
	tod numeric := t - days::numeric * 86400000000000;
	c record;
	parts text[];
	n double precision;
	unit text;
	wd bigint;
BEGIN
	c := uh_civil(days);
	CASE m
	WHEN 'start of day' THEN
		RETURN days::numeric * 86400000000000;
	WHEN 'start of month' THEN
		RETURN uh_time_of(c.y, c.m, 1, 0, 0, 0, 0);
	WHEN 'start of year' THEN
		RETURN uh_time_of(c.y, 1, 1, 0, 0, 0, 0);
	WHEN 'utc', 'localtime', 'subsec', 'subsecond' THEN
		RETURN t;
	ELSE
	END CASE;
	IF m LIKE 'weekday %' THEN
		unit := btrim(substr(m, 9), E' \t\n\r\f\v');
		IF unit !~ '^[+-]?[0-9]{1,9}$' THEN
			RETURN NULL;
		END IF;
		n := unit::bigint;
		IF n < 0 OR n > 6 THEN
			RETURN NULL;
		END IF;
		wd := ((days + 4) % 7 + 7) % 7;
		RETURN t + ((n::bigint - wd + 7) % 7)::numeric * 86400000000000;
	END IF;
	parts := regexp_split_to_array(btrim(m, E' \t\n\r\f\v'), E'[ \t\n\r\f\v]+');
	IF array_length(parts, 1) IS DISTINCT FROM 2 THEN
		RETURN NULL;
	END IF;
	IF parts[1] !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
		RETURN NULL;
	END IF;
	BEGIN
		n := parts[1]::double precision;
	EXCEPTION WHEN others THEN
		RETURN NULL;
	END;
	unit := parts[2];
	IF right(unit, 1) = 's' THEN
		unit := left(unit, -1);
	END IF;
	CASE unit
	WHEN 'second' THEN
		RETURN t + trunc(n * 1000000000::double precision)::numeric;
	WHEN 'minute' THEN
		RETURN t + trunc(n * 60000000000::double precision)::numeric;
	WHEN 'hour' THEN
		RETURN t + trunc(n * 3600000000000::double precision)::numeric;
	WHEN 'day' THEN
		RETURN t + trunc(n * 24 * 3600000000000::double precision)::numeric;
	WHEN 'month', 'year' THEN
		IF n <> trunc(n) THEN
			RETURN NULL;
		END IF;
		IF unit = 'month' THEN
			RETURN uh_time_of(c.y, c.m + n::bigint, c.d, 0, 0, 0, tod);
		END IF;
		RETURN uh_time_of(c.y + n::bigint, c.m, c.d, 0, 0, 0, tod);
	ELSE
		RETURN NULL;
	END CASE;
END
$f$;

-- uh_julian_text is SQLite's %J of the time jd (a Julian day number in
-- milliseconds): the double jd / 86400000.0 printed as printf's %.16g does,
-- computed exactly. The double is n / 2^k for the integer n nearest to
-- jd * 2^k / 86400000 (ties to even), k giving it 53 bits; its 16
-- significant digits are rounded from that exact value, ties to even.
CREATE OR REPLACE FUNCTION uh_julian_text(jd bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $f$
DECLARE
	e integer := 0;   -- 2^e <= jd / 86400000 < 2^(e+1)
	twok numeric := 1;
	n numeric;
	r numeric;
	d integer;        -- 10^(d-1) <= value < 10^d
	q numeric;
	txt text;
	x integer;
BEGIN
	IF jd <= 0 THEN
		RETURN '0';
	END IF;
	WHILE jd >= 86400000 * power(2::numeric, e + 1) LOOP
		e := e + 1;
	END LOOP;
	WHILE e > -80 AND jd * power(2::numeric, -e) < 86400000 LOOP
		e := e - 1;
	END LOOP;
	FOR i IN 1..(52 - e) LOOP
		twok := twok * 2;
	END LOOP;
	n := div(jd * twok, 86400000);
	r := mod(jd * twok, 86400000);
	IF 2 * r > 86400000 OR (2 * r = 86400000 AND mod(n, 2) = 1) THEN
		n := n + 1;
	END IF;
	IF n >= twok THEN
		d := length(div(n, twok)::text);
	ELSE
		d := 0;
		WHILE n * power(10::numeric, 1 - d) < twok LOOP
			d := d - 1;
		END LOOP;
	END IF;
	q := div(n * power(10::numeric, 16 - d), twok);
	r := mod(n * power(10::numeric, 16 - d), twok);
	IF 2 * r > twok OR (2 * r = twok AND mod(q, 2) = 1) THEN
		q := q + 1;
	END IF;
	IF q >= power(10::numeric, 16) THEN -- rounded up to the next power of ten
		q := div(q, 10);
		d := d + 1;
	END IF;
	txt := q::text; -- 16 digits: the first is 10^(d-1)
	IF d < -3 THEN -- printf's %g switches to an exponent below 1e-4
		txt := rtrim(rtrim(substr(txt, 1, 1) || '.' || substr(txt, 2), '0'), '.');
		x := d - 1;
		RETURN txt || 'e-' || lpad((-x)::text, 2, '0');
	ELSIF d <= 0 THEN
		txt := '0.' || repeat('0', -d) || txt;
	ELSE
		txt := substr(txt, 1, d) || '.' || substr(txt, d + 1);
	END IF;
	RETURN rtrim(rtrim(txt, '0'), '.');
END
$f$;

-- uh_strftime is SQLite's strftime(format, time, modifiers...) over values
-- in normal form (as filter.strftime).
CREATE OR REPLACE FUNCTION uh_strftime(VARIADIC args jsonb[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $f$
DECLARE
	fmt text;
	tv jsonb;
	mods jsonb[];
	mod jsonb;
	first text := '';
	t numeric;
	n double precision;
	isnum boolean := false;
	jd numeric;
	days bigint;
	tod numeric;
	c record;
	out text := '';
	i integer := 1;
	ch text;
	wd bigint;
	yd bigint;
	thu bigint;
	iso record;
	h bigint;
BEGIN
	IF array_length(args, 1) IS NULL OR array_length(args, 1) < 2 OR jsonb_typeof(args[1]) IS DISTINCT FROM 'string' THEN
		RETURN NULL;
	END IF;
	fmt := args[1] #>> '{}';
	tv := args[2];
	mods := COALESCE(args[3:], '{}');
	IF array_length(mods, 1) > 0 AND jsonb_typeof(mods[1]) = 'string' THEN
		first := lower(mods[1] #>> '{}');
	END IF;
	t := uh_parse_time(tv);
	IF jsonb_typeof(tv) = 'number' THEN
		n := tv::double precision;
		isnum := true;
	ELSIF jsonb_typeof(tv) = 'string' THEN
		n := uh_text_num(tv #>> '{}');
		isnum := n IS NOT NULL;
	END IF;
	IF t IS NOT NULL AND first = 'auto' THEN
		mods := COALESCE(mods[2:], '{}');
	ELSIF t IS NULL AND isnum THEN
		IF n >= 0 AND n < 5373484.5 THEN -- a Julian day number
			t := (trunc(n * 86400000 + 0.5) - 210866760000000)::numeric * 1000000;
		END IF;
		IF first = 'unixepoch' OR (first = 'auto' AND t IS NULL AND n >= -210866760000 AND n <= 253402300799) THEN
			jd := (n * 1000 + 210866760000000)::numeric;
			t := NULL;
			IF jd >= 0 AND jd < 464269060800000 THEN
				t := (trunc(jd + 0.5) - 210866760000000) * 1000000;
			END IF;
		END IF;
		IF first IN ('unixepoch', 'auto', 'julianday') THEN
			mods := COALESCE(mods[2:], '{}');
		END IF;
	END IF;
	IF t IS NULL THEN
		RETURN NULL;
	END IF;
	FOREACH mod IN ARRAY mods LOOP
		IF jsonb_typeof(mod) IS DISTINCT FROM 'string' THEN
			RETURN NULL;
		END IF;
		t := uh_time_modifier(t, mod #>> '{}');
		IF t IS NULL THEN
			RETURN NULL;
		END IF;
	END LOOP;
	jd := floor(t / 1000000) + 210866760000000;
	IF jd < 0 OR jd > 464269060799999 THEN
		RETURN NULL;
	END IF;
	days := floor(t / 86400000000000)::bigint;
	tod := t - days::numeric * 86400000000000; -- nanoseconds of the day
	c := uh_civil(days);
	wd := ((days + 4) % 7 + 7) % 7;
	yd := days - uh_days_from_civil(c.y, 1, 1); -- from 0
	h := floor(tod / 3600000000000)::bigint;
	thu := days + 3 - (wd + 6) % 7; -- the Thursday of the ISO week
	iso := uh_civil(thu);
	WHILE i <= length(fmt) LOOP
		ch := substr(fmt, i, 1);
		IF ch <> '%' THEN
			out := out || ch;
			i := i + 1;
			CONTINUE;
		END IF;
		i := i + 1;
		IF i > length(fmt) THEN
			RETURN NULL;
		END IF;
		ch := substr(fmt, i, 1);
		i := i + 1;
		CASE ch
		WHEN 'd' THEN out := out || uh_pad(c.d, 2);
		WHEN 'e' THEN out := out || lpad(c.d::text, 2, ' ');
		WHEN 'f' THEN out := out || uh_pad(floor(tod / 1000000000)::bigint % 60, 2) || '.' || uh_pad(floor(tod / 1000000)::bigint % 1000, 3);
		WHEN 'F' THEN out := out || uh_pad(c.y, 4) || '-' || uh_pad(c.m, 2) || '-' || uh_pad(c.d, 2);
		WHEN 'H' THEN out := out || uh_pad(floor(tod / 3600000000000)::bigint, 2);
		WHEN 'j' THEN out := out || uh_pad(days - uh_days_from_civil(c.y, 1, 1) + 1, 3);
		WHEN 'm' THEN out := out || uh_pad(c.m, 2);
		WHEN 'M' THEN out := out || uh_pad(floor(tod / 60000000000)::bigint % 60, 2);
		WHEN 's' THEN out := out || floor(t / 1000000000)::bigint::text;
		WHEN 'S' THEN out := out || uh_pad(floor(tod / 1000000000)::bigint % 60, 2);
		WHEN 'T' THEN out := out || uh_pad(floor(tod / 3600000000000)::bigint, 2) || ':' || uh_pad(floor(tod / 60000000000)::bigint % 60, 2) || ':' || uh_pad(floor(tod / 1000000000)::bigint % 60, 2);
		WHEN 'R' THEN out := out || uh_pad(floor(tod / 3600000000000)::bigint, 2) || ':' || uh_pad(floor(tod / 60000000000)::bigint % 60, 2);
		WHEN 'u' THEN out := out || CASE WHEN wd = 0 THEN 7 ELSE wd END::text;
		WHEN 'w' THEN out := out || wd::text;
		WHEN 'Y' THEN out := out || uh_pad(c.y, 4);
		WHEN 'G' THEN out := out || uh_pad(iso.y, 4);
		WHEN 'g' THEN out := out || uh_pad(iso.y % 100, 2);
		WHEN 'V' THEN out := out || uh_pad((thu - uh_days_from_civil(iso.y, 1, 1)) / 7 + 1, 2);
		WHEN 'U' THEN out := out || uh_pad((yd - wd + 7) / 7, 2);
		WHEN 'W' THEN out := out || uh_pad((yd - (wd + 6) % 7 + 7) / 7, 2);
		WHEN 'k' THEN out := out || lpad(h::text, 2, ' ');
		WHEN 'I' THEN out := out || uh_pad(CASE WHEN h % 12 = 0 THEN 12 ELSE h % 12 END, 2);
		WHEN 'l' THEN out := out || lpad(CASE WHEN h % 12 = 0 THEN 12 ELSE h % 12 END::text, 2, ' ');
		WHEN 'p' THEN out := out || CASE WHEN h < 12 THEN 'AM' ELSE 'PM' END;
		WHEN 'P' THEN out := out || CASE WHEN h < 12 THEN 'am' ELSE 'pm' END;
		WHEN 'J' THEN out := out || uh_julian_text(jd::bigint);
		WHEN '%' THEN out := out || '%';
		ELSE RETURN NULL;
		END CASE;
	END LOOP;
	RETURN out;
END
$f$;
`
