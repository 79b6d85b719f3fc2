package storetest

import (
	"testing"

	"github.com/envvault/envvault/vault"
)

// testOnSecretChange: a profile keeps by default, takes restart, reads it
// back, and refuses any other word naming on_secret_change without
// changing.
func testOnSecretChange(t *testing.T, f *fixture) {
	user := f.mustUser("alice")
	p := f.mustProfile(user, "p")
	if p.OnSecretChange != vault.OnSecretChangeKeep {
		t.Errorf("default on_secret_change %q, want keep", p.OnSecretChange)
	}
	sameProfile(t, f.mustGetProfile(user, p.ID), p)
	r, err := f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "r", Image: "alpine", OnSecretChange: vault.OnSecretChangeRestart})
	if err != nil {
		t.Fatal(err)
	}
	sameProfile(t, f.mustGetProfile(user, r.ID), r)
	if r.OnSecretChange != vault.OnSecretChangeRestart {
		t.Errorf("created with restart: %q", r.OnSecretChange)
	}
	up, err := f.svc.UpdateProfile(f.ctx, user, p.ID, vault.ProfilePatch{OnSecretChange: ptr(vault.OnSecretChangeRestart)})
	if err != nil || up.OnSecretChange != vault.OnSecretChangeRestart {
		t.Fatalf("patch to restart: %+v, %v", up, err)
	}
	sameProfile(t, f.mustGetProfile(user, p.ID), up)
	_, err = f.svc.UpdateProfile(f.ctx, user, p.ID, vault.ProfilePatch{OnSecretChange: ptr("reboot")})
	wantErr(t, err, vault.EINVALID, "on_secret_change")
	_, err = f.svc.CreateProfile(f.ctx, user, vault.ProfileInput{Name: "x", Image: "alpine", OnSecretChange: "Restart"})
	wantErr(t, err, vault.EINVALID, "on_secret_change")
	sameProfile(t, f.mustGetProfile(user, p.ID), up)
	back, err := f.svc.UpdateProfile(f.ctx, user, p.ID, vault.ProfilePatch{OnSecretChange: ptr("")})
	if err != nil || back.OnSecretChange != vault.OnSecretChangeKeep {
		t.Errorf(`patch to "": %+v, %v; want keep`, back, err)
	}
}
