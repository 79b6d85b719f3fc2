package sqlite_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/envvault/envvault/internal/testvault"
	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/sqlite"
	"github.com/envvault/envvault/vault"
)

// Two handles on one file stand for two envvault processes: SQLite's write
// lock, not anything in this process, keeps their claims and log appends
// apart.
func TestTasksFromTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "envvault.db")
	handles := []*sqlite.DB{mustOpenPath(t, path), mustOpenPath(t, path)}
	ctx := t.Context()
	svc := vault.NewService(handles[0], testvault.MustKeyring(t), vault.Options{})
	u, _, err := svc.CreateUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreateProfile(ctx, u.ID, vault.ProfileInput{Name: "p", Image: "img"})
	if err != nil {
		t.Fatal(err)
	}
	o := orchestrator.New(orchestrator.Config{Vault: svc, Store: handles[1]})
	const n, racers, appends = 40, 8, 20
	for i := range n {
		if _, err := o.CreateTask(ctx, u.ID, p.ID, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}

	claimed := make([][]string, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			for {
				task, err := handles[i%2].ClaimTask(ctx, fmt.Sprint("w", i))
				if vault.ErrorCode(err) == vault.ENOTFOUND {
					return
				}
				if err != nil {
					t.Errorf("racer %d: claim: %v", i, err)
					return
				}
				claimed[i] = append(claimed[i], task.ID)
				for j := range appends {
					if err := handles[(i+j)%2].AppendTaskLog(ctx, task.ID, fmt.Appendf(nil, "%d", j)); err != nil {
						t.Errorf("racer %d: append: %v", i, err)
						return
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()

	seen := map[string]bool{}
	for _, ids := range claimed {
		for _, id := range ids {
			if seen[id] {
				t.Errorf("task %s claimed twice", id)
			}
			seen[id] = true
			chunks, err := handles[0].TaskLogs(ctx, id, 0)
			if err != nil {
				t.Fatal(err)
			}
			for j, c := range chunks {
				if c.Seq != int64(j+1) || string(c.Data) != fmt.Sprint(j) {
					t.Errorf("task %s chunk %d: seq %d data %q", id, j, c.Seq, c.Data)
				}
			}
			if len(chunks) != appends {
				t.Errorf("task %s: %d chunks, want %d", id, len(chunks), appends)
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d tasks claimed", len(seen), n)
	}
}
