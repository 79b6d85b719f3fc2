package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/envvault/envvault/orchestrator"
	"github.com/envvault/envvault/vault"
)

func chunkData(chunks []orchestrator.LogChunk) []string {
	out := make([]string, len(chunks))
	for i, c := range chunks {
		out[i] = string(c.Data)
	}
	return out
}

func chunkSeqs(chunks []orchestrator.LogChunk) []int64 {
	out := make([]int64, len(chunks))
	for i, c := range chunks {
		out[i] = c.Seq
	}
	return out
}

func testTaskLogs(t *testing.T, f *fixture) {
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task, other := f.mustQueue(alice, p.ID, "one"), f.mustQueue(alice, p.ID, "two")
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 0 {
		t.Fatalf("fresh task has logs: %v", chunkData(chunks))
	}

	// Bytes, not text: NUL, invalid UTF-8, CR, and a chunk of 1 MiB.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	written := [][]byte{[]byte("hello\n"), {0, 0xff, 0xfe, '\r', '\n'}, []byte("*** masked ***\n"), big, []byte("x")}
	for i, data := range written {
		if err := f.store.AppendTaskLog(f.ctx, task.ID, data); err != nil {
			t.Fatalf("append chunk %d: %v", i, err)
		}
		f.mustAppend(other.ID, fmt.Sprintf("other %d", i))
	}
	all := f.mustLogs(task.ID, 0)
	if len(all) != len(written) {
		t.Fatalf("%d chunks read, want %d", len(all), len(written))
	}
	for i, c := range all {
		if !bytes.Equal(c.Data, written[i]) {
			t.Errorf("chunk %d: got %d bytes %.20q, want %d bytes %.20q", i, len(c.Data), c.Data, len(written[i]), written[i])
		}
		if c.Seq < 1 || (i > 0 && c.Seq <= all[i-1].Seq) {
			t.Errorf("seqs %v do not grow from at least 1", chunkSeqs(all))
		}
	}
	for i := range all {
		after := f.mustLogs(task.ID, all[i].Seq)
		if g, w := chunkSeqs(after), chunkSeqs(all[i+1:]); !slices.Equal(g, w) {
			t.Errorf("after seq %d: got seqs %v, want %v", all[i].Seq, g, w)
		}
	}
	if got := chunkData(f.mustLogs(other.ID, 0)); !slices.Equal(got, []string{"other 0", "other 1", "other 2", "other 3", "other 4"}) {
		t.Errorf("the other task's logs: %q", got)
	}
	if chunks := f.mustLogs("tsk_nonexistent", 0); len(chunks) != 0 {
		t.Errorf("a task that does not exist has logs: %v", chunkData(chunks))
	}
	wantErr(t, f.store.AppendTaskLog(f.ctx, "tsk_nonexistent", []byte("x")), vault.ENOTFOUND, "")
	if err := f.store.AppendTaskLog(f.ctx, task.ID, nil); err != nil {
		t.Errorf("append an empty chunk: %v", err)
	}

	// Clearing empties the task's logs, not another's, and the seqs of
	// the chunks after it go on: a reader at seq n never mistakes a new
	// chunk for one it has read.
	last := f.mustLogs(task.ID, 0)
	lastSeq := last[len(last)-1].Seq
	if err := f.store.ClearTaskLogs(f.ctx, task.ID); err != nil {
		t.Fatalf("clear logs: %v", err)
	}
	if chunks := f.mustLogs(task.ID, 0); len(chunks) != 0 {
		t.Errorf("cleared logs still hold %q", chunkData(chunks))
	}
	if n := len(f.mustLogs(other.ID, 0)); n != len(written) {
		t.Errorf("clearing one task's logs left the other %d chunks, want %d", n, len(written))
	}
	f.mustAppend(task.ID, "after clear")
	after := f.mustLogs(task.ID, 0)
	if len(after) != 1 || string(after[0].Data) != "after clear" || after[0].Seq <= lastSeq {
		t.Errorf("after clearing at seq %d: got seqs %v data %q, want one chunk past it", lastSeq, chunkSeqs(after), chunkData(after))
	}
	if err := f.store.ClearTaskLogs(f.ctx, "tsk_nonexistent"); err != nil {
		t.Errorf("clear the logs of a task that does not exist: %v", err)
	}
}

func testTaskConcurrentLogAppends(t *testing.T, f *fixture) {
	const writers, each = racers, 25
	alice := f.mustUser("alice")
	p := f.mustProfile(alice, "p")
	task := f.mustQueue(alice, p.ID, "prompt")
	// A follower reads, as Orchestrator.Logs does, the chunks after the
	// last one it has seen, while they are written: it must miss none.
	writing := make(chan struct{})
	followed := make(chan []orchestrator.LogChunk, 1)
	go func() {
		var got []orchestrator.LogChunk
		var seq int64
		for done := false; !done; {
			select {
			case <-writing:
				done = true // one more read, after the last write
			default:
			}
			chunks, err := f.store.TaskLogs(f.ctx, task.ID, seq)
			if err != nil {
				t.Errorf("follow: %v", err)
				break
			}
			got = append(got, chunks...)
			if len(chunks) > 0 {
				seq = chunks[len(chunks)-1].Seq
			}
		}
		followed <- got
	}()
	for w, err := range race(func(w int) error {
		for i := range each {
			if err := f.store.AppendTaskLog(f.ctx, task.ID, fmt.Appendf(nil, "%d:%d", w, i)); err != nil {
				return fmt.Errorf("append %d: %w", i, err)
			}
		}
		return nil
	}) {
		if err != nil {
			t.Errorf("writer %d: %v", w, err)
		}
	}
	close(writing)

	chunks := f.mustLogs(task.ID, 0)
	if len(chunks) != writers*each {
		t.Fatalf("%d chunks, want %d", len(chunks), writers*each)
	}
	if g, w := chunkSeqs(<-followed), chunkSeqs(chunks); !slices.Equal(g, w) {
		t.Errorf("a follower saw seqs\n%v\nwant\n%v", g, w)
	}
	next := make([]int, writers) // each writer's chunks come in its order
	for i, c := range chunks {
		if i > 0 && c.Seq <= chunks[i-1].Seq {
			t.Fatalf("seqs not strictly ascending at %d: %d after %d", i, c.Seq, chunks[i-1].Seq)
		}
		var w, n int
		if _, err := fmt.Sscanf(string(c.Data), "%d:%d", &w, &n); err != nil || w < 0 || w >= writers {
			t.Fatalf("chunk %d holds %q", c.Seq, c.Data)
		}
		if n != next[w] {
			t.Errorf("chunk %d: writer %d's chunk %d, want its chunk %d", c.Seq, w, n, next[w])
		}
		next[w] = n + 1
	}
}
