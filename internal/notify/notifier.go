package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Notification is one event to announce: scripts to run, in order, and
// optionally a mail.
type Notification struct {
	Scripts []Command
	Mail    bool
	Subject string
	Body    string
}

// Notifier runs notifications one after the other in the order they were
// queued (the order keepalived's notify FIFO guarantees), so a "down"
// script never overtakes the "up" script queued before it.
type Notifier struct {
	Runner *Runner
	Mailer *Mailer // nil: mails are skipped
	// ScriptTimeout bounds each script (default 30 s).
	ScriptTimeout time.Duration
	// OnError receives failures of queued notifications (optional).
	OnError func(Notification, error)

	mu    sync.Mutex
	queue []Notification
	wake  chan struct{}
}

func (n *Notifier) wakeCh() chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.wake == nil {
		n.wake = make(chan struct{}, 1)
	}
	return n.wake
}

// Notify runs the notification now and returns every failure joined.
func (n *Notifier) Notify(ctx context.Context, note Notification) error {
	var errs []error
	timeout := n.ScriptTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for _, cmd := range note.Scripts {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := n.Runner.Run(sctx, cmd)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("notify script %s: %w", cmd.Path, err))
		}
	}
	if note.Mail && n.Mailer != nil {
		if err := n.Mailer.Send(ctx, note.Subject, note.Body); err != nil {
			errs = append(errs, fmt.Errorf("smtp alert: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Enqueue queues a notification for Run; it never blocks.
func (n *Notifier) Enqueue(note Notification) {
	w := n.wakeCh()
	n.mu.Lock()
	n.queue = append(n.queue, note)
	n.mu.Unlock()
	select {
	case w <- struct{}{}:
	default:
	}
}

// Run processes queued notifications in order until ctx is done.
func (n *Notifier) Run(ctx context.Context) error {
	w := n.wakeCh()
	for {
		n.mu.Lock()
		q := n.queue
		n.queue = nil
		n.mu.Unlock()
		for _, note := range q {
			if ctx.Err() != nil {
				return nil
			}
			if err := n.Notify(ctx, note); err != nil && n.OnError != nil {
				n.OnError(note, err)
			}
		}
		select {
		case <-w:
		case <-ctx.Done():
			return nil
		}
	}
}
