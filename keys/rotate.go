package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/oauthd/oauthd/storage"
)

// planScheduled decides the routine changes to the stored keys at now:
//   - an algorithm with no key that signs now gets one, active at once (first
//     start; or the keys were rotated with pre-publication before any key
//     existed, or the active key was removed by hand); when a pending key
//     exists, the new one retires after the pending one takes over;
//   - when the newest key of an algorithm has signed for RotationInterval
//     minus PrePublish, a successor is added that activates PrePublish from
//     now, and the newest key gets its retirement time;
//   - keys of algorithms no longer configured get a retirement time;
//   - keys past their retirement time are deleted.
//
// It runs inside storage.UpdateSigningKeys, so current is what every other
// process sees too.
func (m *Manager) planScheduled(current []storage.SigningKey, now time.Time) (storage.KeyChange, error) {
	change := storage.KeyChange{Retire: map[string]time.Time{}}
	if err := m.checkSecret(current); err != nil {
		return change, err
	}
	newest := map[string]storage.SigningKey{}
	for _, k := range current {
		if k.RetiresAt != nil && !now.Before(*k.RetiresAt) {
			change.Delete = append(change.Delete, k.KID)
			continue
		}
		if n, ok := newest[k.Alg]; !ok || k.ActivatesAt.After(n.ActivatesAt) {
			newest[k.Alg] = k
		}
	}
	active := activeAlgs(current, now)
	configured := map[string]bool{}
	for _, alg := range m.cfg.algs() {
		configured[alg] = true
		n, ok := newest[alg]
		switch {
		case !active[alg]:
			rec, err := newRecord(m.aead, alg, now)
			if err != nil {
				return change, err
			}
			if ok && n.ActivatesAt.After(now) { // a pending key takes over later
				retire := n.ActivatesAt.Add(m.cfg.RetireAfter)
				rec.RetiresAt = &retire
			}
			change.Add = append(change.Add, rec)
		case m.cfg.RotationInterval > 0 && !now.Add(m.cfg.PrePublish).Before(n.ActivatesAt.Add(m.cfg.RotationInterval)):
			at := now.Add(m.cfg.PrePublish)
			rec, err := newRecord(m.aead, alg, at)
			if err != nil {
				return change, err
			}
			change.Add = append(change.Add, rec)
			change.Retire[n.KID] = at.Add(m.cfg.RetireAfter)
		}
	}
	for alg, n := range newest {
		if !configured[alg] && n.RetiresAt == nil {
			change.Retire[n.KID] = now.Add(m.cfg.RetireAfter)
		}
	}
	return change, nil
}

// activeAlgs reports which algorithms have a key that signs at now.
func activeAlgs(keys []storage.SigningKey, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, k := range keys {
		if !k.ActivatesAt.After(now) && (k.RetiresAt == nil || now.Before(*k.RetiresAt)) {
			out[k.Alg] = true
		}
	}
	return out
}

// checkSecret refuses to change the key set when a stored key does not
// decrypt under this process's secret: a process started with the wrong
// OAUTHD_SECRET must not add keys that every other process fails to load.
func (m *Manager) checkSecret(current []storage.SigningKey) error {
	for _, r := range current {
		if _, err := openRecord(m.aead, r); err != nil {
			return err
		}
	}
	return nil
}

// planForced adds a successor for every configured algorithm regardless of
// schedule. immediate makes it sign at once (an emergency: caches that have
// not fetched the JWKS since will not know the kid for up to JWKSMaxAge);
// otherwise it activates after PrePublish like a scheduled rotation, except
// for an algorithm with no key signing now, whose new key signs at once.
func (m *Manager) planForced(current []storage.SigningKey, now time.Time, immediate bool) (storage.KeyChange, []storage.SigningKey, error) {
	change := storage.KeyChange{Retire: map[string]time.Time{}}
	if err := m.checkSecret(current); err != nil {
		return change, nil, err
	}
	active := activeAlgs(current, now)
	for _, alg := range m.cfg.algs() {
		at := now.Add(m.cfg.PrePublish)
		if immediate || !active[alg] {
			at = now
		}
		rec, err := newRecord(m.aead, alg, at)
		if err != nil {
			return change, nil, err
		}
		change.Add = append(change.Add, rec)
		// Every key of the algorithm not yet retiring is superseded by this one.
		for _, k := range current {
			if k.Alg != alg {
				continue
			}
			retire := at.Add(m.cfg.RetireAfter)
			if k.ActivatesAt.After(now) && !k.ActivatesAt.Before(at) {
				// A pending key that would activate with or after the new
				// one never signs: it leaves when the new key takes over.
				// Kept until RetireAfter, it would sign from its activation
				// on (it is the latest) and vanish while its tokens live.
				retire = at
			}
			if k.RetiresAt == nil || k.RetiresAt.After(retire) {
				change.Retire[k.KID] = retire
			}
		}
	}
	return change, change.Add, nil
}

// Rotate creates a successor key for every configured algorithm now (see
// planForced) and returns the new keys.
func (m *Manager) Rotate(ctx context.Context, immediate bool) ([]Info, error) {
	var added []storage.SigningKey
	err := m.store.UpdateSigningKeys(ctx, func(current []storage.SigningKey) (storage.KeyChange, error) {
		change, add, err := m.planForced(current, m.now().UTC(), immediate)
		added = add
		return change, err
	})
	if err != nil {
		return nil, fmt.Errorf("rotate signing keys: %w", err)
	}
	if err := m.Load(ctx); err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(added))
	for _, a := range added {
		st := "pending"
		if !a.ActivatesAt.After(m.now().UTC()) {
			st = "active"
		}
		out = append(out, Info{KID: a.KID, Alg: a.Alg, Status: st, CreatedAt: a.CreatedAt, ActivatesAt: a.ActivatesAt, PublicJWK: []byte(a.PublicJWK)})
	}
	m.logger.InfoContext(ctx, "signing keys rotated", "immediate", immediate, "keys", len(out))
	return out, nil
}

// Tick runs one round of scheduled work: apply the schedule (when anything
// is due) and reload the set from the database.
func (m *Manager) Tick(ctx context.Context) error {
	if m.due() {
		if err := m.store.UpdateSigningKeys(ctx, func(current []storage.SigningKey) (storage.KeyChange, error) {
			return m.planScheduled(current, m.now().UTC())
		}); err != nil {
			return fmt.Errorf("scheduled key rotation: %w", err)
		}
	}
	return m.Load(ctx)
}

// due reports, from memory, whether the schedule has work: a successor to
// add or a retired key to delete. The decision is re-made under the lock.
func (m *Manager) due() bool {
	s := m.current()
	now := m.now().UTC()
	newest := map[string]*Key{}
	for _, k := range s.all {
		if k.RetiresAt != nil && !now.Before(*k.RetiresAt) {
			return true
		}
		if n, ok := newest[k.Alg]; !ok || k.ActivatesAt.After(n.ActivatesAt) {
			newest[k.Alg] = k
		}
	}
	for _, alg := range m.cfg.algs() {
		n, ok := newest[alg]
		if !ok {
			return true
		}
		if m.cfg.RotationInterval > 0 && !now.Add(m.cfg.PrePublish).Before(n.ActivatesAt.Add(m.cfg.RotationInterval)) {
			return true
		}
	}
	return false
}

// Run reloads the key set every ReloadInterval and applies the rotation
// schedule until ctx ends. Errors (a database outage) are logged; signing
// goes on with the keys in memory.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.ReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
				m.logger.WarnContext(ctx, "signing key maintenance failed", "err", err)
			}
		}
	}
}
