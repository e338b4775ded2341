package webhook

import (
	"context"
	"errors"
	"net/http"
)

// Errors of Submit.
var (
	ErrClosed    = errors.New("webhook deliverer closed")
	ErrQueueFull = errors.New("too many callbacks waiting to be delivered")
)

// pending is a delivery waiting for a turn.
type pending struct {
	dl   Delivery
	done func(Result)
}

// Submit delivers dl in the background, at most Options.MaxInFlight at a
// time, and calls done (if not nil) with the result once it has ended. It
// returns ErrQueueFull if Options.MaxQueued deliveries are already
// waiting, and ErrClosed after Close; done is not called then. A delivery
// Close stops is reported to done as not delivered.
func (d *Deliverer) Submit(dl Delivery, done func(Result)) error {
	if dl.ID == "" {
		dl.ID = newID()
	}
	if done == nil {
		done = func(Result) {}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case len(d.queue) >= d.opts.MaxQueued:
		return ErrQueueFull
	}
	d.queue = append(d.queue, pending{dl, done})
	if d.workers < d.opts.MaxInFlight {
		d.workers++
		d.wg.Add(1)
		go d.work()
	}
	return nil
}

// work runs queued deliveries until there are none.
func (d *Deliverer) work() {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.workers--
			d.mu.Unlock()
			return
		}
		p := d.queue[0]
		d.queue[0] = pending{}
		d.queue = d.queue[1:]
		d.mu.Unlock()
		p.done(d.Deliver(d.hard, p.dl))
	}
}

// Close stops the Deliverer: Submit refuses new deliveries, those still
// waiting for a turn are reported as not delivered at once, and those
// running make no new attempt. An attempt under way may finish until ctx
// ends; then it is cut off. Close returns once no delivery is running and
// every done has returned, with ctx's error if the grace ran out.
func (d *Deliverer) Close(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	waiting := d.queue
	d.queue = nil
	d.mu.Unlock()
	d.stopSoft()
	for _, p := range waiting {
		p.done(Result{ID: p.dl.ID, Reason: "not delivered: the deliverer was closed before its first attempt", Attempts: []Attempt{}})
	}
	finished := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(finished)
	}()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = ctx.Err()
		d.stopHard()
		<-finished
	}
	d.stopHard()
	d.client.Transport.(*http.Transport).CloseIdleConnections()
	return err
}
