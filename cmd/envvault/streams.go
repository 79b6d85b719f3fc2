package main

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// streams gives the responses that stream (GET /v1/tasks/:id/logs?follow=true
// lasts as long as its task) what the server's limits get wrong for them.
// A response streams once its handler flushes it; ordinary handlers never
// do, net/http sends their answer when they return.
//
//   - Write deadline. The server's WriteTimeout counts from the request,
//     so it would cut a stream off after writeTimeout. A stream's deadline
//     is instead renewed before each write and flush: it is cut off only
//     if the client takes writeTimeout to take one write in.
//   - Shutdown. http.Server.Shutdown waits for every request in flight:
//     right for an ordinary one (it finishes in moments), wrong for a
//     stream. Cancelling the server's base context would end both. So at
//     shutdown the streams see their context cancelled (and a response
//     that begins to stream afterwards at once), while ordinary requests
//     keep theirs and finish.
type streams struct {
	writeTimeout time.Duration

	mu      sync.Mutex
	closing bool
	active  map[*streamWriter]struct{}
}

func newStreams(writeTimeout time.Duration) *streams {
	return &streams{writeTimeout: writeTimeout, active: map[*streamWriter]struct{}{}}
}

// wrap returns h with each request's context cancellable by shutdown.
func (s *streams) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		sw := &streamWriter{ResponseWriter: w, s: s, cancel: cancel}
		defer s.forget(sw)
		h.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// shutdown cancels the streams, and every response that begins to stream
// from now on. http.Server.RegisterOnShutdown calls it.
func (s *streams) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for sw := range s.active {
		sw.cancel()
	}
	clear(s.active)
}

func (s *streams) forget(sw *streamWriter) {
	s.mu.Lock()
	delete(s.active, sw)
	s.mu.Unlock()
}

// streamWriter notices the first flush of a response. Unwrap lets
// http.ResponseController reach the server's writer (to flush, or to set
// the write deadline). A handler uses it from one goroutine, as any
// http.ResponseWriter.
type streamWriter struct {
	http.ResponseWriter
	s         *streams
	cancel    context.CancelFunc
	streaming bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	if w.streaming {
		w.renewDeadline()
	}
	return w.ResponseWriter.Write(p)
}

// FlushError is what http.ResponseController.Flush (and echo's
// Response.Flush) calls.
func (w *streamWriter) FlushError() error {
	if !w.streaming {
		w.streaming = true
		w.s.mu.Lock()
		if w.s.closing {
			w.cancel()
		} else {
			w.s.active[w] = struct{}{}
		}
		w.s.mu.Unlock()
	}
	w.renewDeadline()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is for handlers that assert http.Flusher.
func (w *streamWriter) Flush() { _ = w.FlushError() }

func (w *streamWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *streamWriter) renewDeadline() {
	if w.s.writeTimeout > 0 {
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.s.writeTimeout))
	}
}
