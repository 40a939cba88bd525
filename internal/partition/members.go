package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Members keeps this process in the membership bucket and reports the live
// processes.
type Members struct {
	kv       jetstream.KeyValue
	self     string
	beat     time.Duration
	log      zerolog.Logger
	describe func() []byte

	mu   sync.Mutex
	live []string
}

// MembersConfig tunes membership.
type MembersConfig struct {
	// Bucket is the key-value bucket's name.
	Bucket string
	// Self is this process's id, unique among the live processes.
	Self string
	// Beat is how often the process rewrites its key (default 1 s).
	Beat time.Duration
	// TTL is how long a key lives without a rewrite (default 5 s): how long
	// a dead process counts as alive. Longer than a GC pause or a busy
	// moment, so a slow process does not lose its partitions.
	TTL time.Duration
	// Replicas of the bucket (the streams' replicas).
	Replicas int
	// Describe returns the value written with each beat (what the process
	// owns, for `promoengine status`); nil writes the time.
	Describe func() []byte
}

// Join creates or updates the bucket and writes this process's key.
func Join(ctx context.Context, js jetstream.JetStream, cfg MembersConfig, log zerolog.Logger) (*Members, error) {
	if cfg.Self == "" {
		return nil, errors.New("partition: a process needs an id")
	}
	if cfg.Beat <= 0 {
		cfg.Beat = time.Second
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Second
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "promoengine processes alive (partition membership)",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("partition: membership bucket %s: %w", cfg.Bucket, err)
	}
	m := &Members{kv: kv, self: cfg.Self, beat: cfg.Beat, log: log, describe: cfg.Describe}
	if err := m.refresh(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Self is this process's id.
func (m *Members) Self() string { return m.self }

// Live returns the live processes, sorted (this one included once it has
// beaten).
func (m *Members) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.live)
}

// put writes this process's key.
func (m *Members) put(ctx context.Context) error {
	value := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	if m.describe != nil {
		value = m.describe()
	}
	if _, err := m.kv.Put(ctx, m.self, value); err != nil {
		return fmt.Errorf("partition: beat: %w", err)
	}
	return nil
}

// refresh writes this process's key and reads the live ones.
func (m *Members) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(m.beat*3, 5*time.Second))
	defer cancel()
	if err := m.put(ctx); err != nil {
		return err
	}
	keys, err := m.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("partition: list members: %w", err)
	}
	slices.Sort(keys)
	m.mu.Lock()
	m.live = keys
	m.mu.Unlock()
	return nil
}

// Run beats until ctx ends and calls changed with the live processes
// whenever they differ from the last call (and once at the start). While
// the bucket cannot be reached the last list stands: the server's pins keep
// consumption exclusive meanwhile.
func (m *Members) Run(ctx context.Context, changed func(live []string)) {
	var last []string
	failing := false
	t := time.NewTicker(m.beat)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := m.refresh(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing {
					m.log.Warn().Err(err).Msg("membership beat failed; keeping the last list of processes")
				}
				failing = true
				continue
			}
			if failing {
				m.log.Info().Msg("membership beat works again")
			}
			failing = false
		}
		if live := m.Live(); first || !slices.Equal(live, last) {
			last = live
			changed(live)
			// Say at once what this process now does.
			pctx, cancel := context.WithTimeout(ctx, max(m.beat*3, 5*time.Second))
			_ = m.put(pctx)
			cancel()
		}
	}
}

// Leave deletes this process's key, so that the others take its partitions
// at their next beat instead of after the key's TTL.
func (m *Members) Leave(ctx context.Context) error {
	if err := m.kv.Delete(ctx, m.self); err != nil {
		return fmt.Errorf("partition: leave: %w", err)
	}
	return nil
}
