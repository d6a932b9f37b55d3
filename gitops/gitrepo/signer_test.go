package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func armoredKeys(t *testing.T, passphrase []byte) (private, public []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("canaryop", "", "canaryop@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	w, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if passphrase != nil {
		if err := e.EncryptPrivateKeys(passphrase, nil); err != nil {
			t.Fatal(err)
		}
	}
	var priv bytes.Buffer
	w, _ = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	return priv.Bytes(), pub.Bytes()
}

func TestSignedCommit(t *testing.T) {
	priv, pub := armoredKeys(t, []byte("s3cret-pass"))
	if _, err := OpenPGPSigner(priv, nil); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("encrypted key without passphrase: %v", err)
	}
	if _, err := OpenPGPSigner(priv, []byte("wrong")); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	signer, err := OpenPGPSigner(priv, []byte("s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	g := newGitServer(t)
	g.seed("acme/apps.git", map[string]string{"apps/web/app.yaml": appYAML})
	c := newCache(t, Options{})
	res, err := c.Update(context.Background(), UpdateRequest{URL: g.url("acme/apps.git"), Branch: "main", Auth: g.auth(), Author: author,
		Edit: setImage("ghcr.io/acme/web:v2"), Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	// Read the pushed commit back from the clone and verify its signature.
	r := c.repo(g.url("acme/apps.git"))
	commit, err := object.GetCommit(r.store, plumbing.NewHash(res.SHA))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := commit.Verify(string(pub)); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	_, otherPub := armoredKeys(t, nil)
	if _, err := commit.Verify(string(otherPub)); err == nil {
		t.Fatal("signature verified with another key")
	}
}
