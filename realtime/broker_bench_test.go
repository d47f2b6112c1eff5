package realtime_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/realtime"
)

// BenchmarkDispatchGroups measures an event's way to the clients of many
// groups (guests with filters of their own, cheap to check), each group
// one client: from Inject until every client has it.
func BenchmarkDispatchGroups(b *testing.B) {
	for _, groups := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(groups, " groups"), func(b *testing.B) {
			e := newEnv(b)
			var clients []*realtime.Client
			for i := range groups {
				c := e.broker.Connect()
				b.Cleanup(func() { e.broker.Disconnect(c) })
				topic := fmt.Sprintf(`posts/*?options={"query":{"filter":"title != 'g%d'"}}`, i)
				if err := e.broker.Subscribe(c.ID, nil, []string{topic}); err != nil {
					b.Fatal(err)
				}
				clients = append(clients, c)
			}
			r, err := e.records.Create(context.Background(), e.records.SystemRequest(), "posts", map[string]any{"title": "t", "owner": e.users["bob"].ID(), "public": true}, "")
			if err != nil {
				b.Fatal(err)
			}
			for _, c := range clients {
				<-c.Messages()
			}
			posts, _ := e.records.Collection("posts")
			rec := r.Clone()
			rec.Collection = posts
			b.ResetTimer()
			for range b.N {
				e.broker.Inject(underhood.Event{Action: "update", Collection: "posts", Record: rec})
				for _, c := range clients {
					<-c.Messages()
				}
			}
		})
	}
}
