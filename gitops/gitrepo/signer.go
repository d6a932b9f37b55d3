package gitrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Signer signs the encoded commit (see go-git's Signer); OpenPGPSigner makes
// one from an armored private key.
type Signer interface {
	Sign(message io.Reader) ([]byte, error)
}

// sign adds the Signer's signature of the encoded commit to it.
func sign(commit *object.Commit, s Signer) error {
	unsigned := &plumbing.MemoryObject{}
	if err := commit.EncodeWithoutSignature(unsigned); err != nil {
		return fmt.Errorf("encode commit: %w", err)
	}
	rd, err := unsigned.Reader()
	if err != nil {
		return fmt.Errorf("encode commit: %w", err)
	}
	signature, err := s.Sign(rd)
	if err != nil {
		return fmt.Errorf("sign commit: %w", err)
	}
	commit.PGPSignature = string(signature)
	return nil
}

// openPGPSigner signs commits with an OpenPGP private key, as `git commit
// -S` does, so that GitHub and `git verify-commit` show them as verified.
type openPGPSigner struct {
	entity *openpgp.Entity
}

// OpenPGPSigner returns a Signer for an armored OpenPGP private key, which
// passphrase decrypts when it is encrypted. The first key of the armored
// block that holds a private key is used.
func OpenPGPSigner(armoredKey, passphrase []byte) (Signer, error) {
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armoredKey))
	if err != nil {
		return nil, fmt.Errorf("%w: read OpenPGP key: %v", ErrInvalidRequest, err)
	}
	for _, e := range list {
		if e.PrivateKey == nil {
			continue
		}
		if e.PrivateKey.Encrypted {
			if len(passphrase) == 0 {
				return nil, fmt.Errorf("%w: the OpenPGP key is encrypted and no passphrase was given", ErrInvalidRequest)
			}
			if err := e.DecryptPrivateKeys(passphrase); err != nil {
				return nil, fmt.Errorf("%w: decrypt OpenPGP key: wrong passphrase or damaged key", ErrInvalidRequest)
			}
		}
		return &openPGPSigner{entity: e}, nil
	}
	return nil, fmt.Errorf("%w: no OpenPGP private key in the armored block", ErrInvalidRequest)
}

func (s *openPGPSigner) Sign(message io.Reader) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.entity, message, nil); err != nil {
		return nil, errors.New("sign commit: " + err.Error())
	}
	return b.Bytes(), nil
}
