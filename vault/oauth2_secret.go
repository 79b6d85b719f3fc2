package vault

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"time"
)

// The rules an oauth2 secret adds to a secret's create and update
// (secret.go calls them): settings required and valid, the client secret
// as its value, tokens dropped when the settings they were issued for
// change.

// validateKindInput checks the kind of a secret to create, with what it
// needs: a value for KindValue; settings, and a client secret for client
// credentials, for KindOAuth2.
func validateKindInput(in SecretInput) error {
	switch in.Kind {
	case KindValue:
		if in.OAuth2 != nil {
			return Invalid("oauth2", "is only for secrets of kind %q", KindOAuth2)
		}
		return ValidateValue("value", in.Value)
	case KindOAuth2:
		if in.OAuth2 == nil {
			return Invalid("oauth2", "is required with kind %q (flow, token_url, client_id, ...)", KindOAuth2)
		}
		if err := in.OAuth2.Validate("oauth2."); err != nil {
			return err
		}
		return validateClientSecret(in.Value, in.OAuth2.Flow == FlowClientCredentials)
	default:
		return Invalid("kind", "must be %q or %q", KindValue, KindOAuth2)
	}
}

// validateClientSecret checks an oauth2 secret's client secret: at most
// MaxValueLen bytes, no NUL; required if it must be given. Its error never
// holds it.
func validateClientSecret(v string, required bool) error {
	switch {
	case v == "" && required:
		return Invalid("client_secret", "is required with flow %q", FlowClientCredentials)
	case len(v) > MaxValueLen:
		return Invalid("client_secret", "must be at most %d bytes", MaxValueLen)
	case strings.IndexByte(v, 0) >= 0:
		return Invalid("client_secret", "must not contain a NUL byte")
	}
	return nil
}

// validateKindPatch checks what a patch gives against the kind of the
// secret it changes.
func validateKindPatch(kind Kind, p SecretPatch) error {
	if kind != KindOAuth2 {
		switch {
		case p.OAuth2 != nil:
			return Invalid("oauth2", "is only for secrets of kind %q", KindOAuth2)
		case p.ClientSecret != nil:
			return Invalid("client_secret", "is only for secrets of kind %q", KindOAuth2)
		case p.Value != nil:
			return ValidateValue("value", *p.Value)
		}
		return nil
	}
	if p.Value != nil {
		return Invalid("value", "an oauth2 secret has no value of its own (tasks receive its access token): give client_secret to change its client secret")
	}
	if p.ClientSecret != nil {
		return validateClientSecret(*p.ClientSecret, true)
	}
	return nil
}

// createOAuth2 stores the connection of a new oauth2 secret: its settings,
// no token yet.
func createOAuth2(ctx context.Context, tx Tx, sec *Secret, o *OAuth2Settings, now time.Time) error {
	if sec.Kind != KindOAuth2 {
		return nil
	}
	settings := *o
	settings.Scopes = slices.Clone(o.Scopes)
	c := &OAuth2Connection{SecretID: sec.ID, UserID: sec.UserID, Settings: settings,
		Status: OAuth2Status{State: OAuth2Pending}, UpdatedAt: now}
	if err := tx.PutOAuth2Connection(ctx, c); err != nil {
		return err
	}
	status := c.Status
	sec.OAuth2, sec.OAuth2Status = &settings, &status
	return nil
}

// patchOAuth2 applies p's settings to the connection of next, an oauth2
// secret being updated, and returns changed (the event's list) with
// "client_secret" for "value" and "oauth2" if the settings changed. New
// settings for other tokens (flow, token URL, client, scopes, audience)
// drop the tokens; new settings or a new client secret clear
// needs_reconnect, as the next task start tries again.
func (s *Service) patchOAuth2(ctx context.Context, tx Tx, next *Secret, p SecretPatch, changed []string) ([]string, error) {
	if i := slices.Index(changed, "value"); i >= 0 {
		changed[i] = "client_secret"
	}
	c, err := tx.OAuth2Connection(ctx, next.ID)
	if err != nil {
		return nil, err
	}
	touched := p.Value != nil
	if p.OAuth2 != nil && !reflect.DeepEqual(normalSettings(*p.OAuth2), normalSettings(c.Settings)) {
		if c.Settings.tokenChanging(*p.OAuth2) {
			c.dropTokens()
		}
		c.Settings = *p.OAuth2
		changed = append(changed, "oauth2")
		touched = true
	}
	if touched {
		if c.Status.State == OAuth2NeedsReconnect {
			c.Status.State, c.Status.Reason = OAuth2Pending, ""
			if c.SealedTokens != nil {
				c.Status.State = OAuth2Connected
			}
		}
		c.UpdatedAt = s.timestamp()
		if err := tx.PutOAuth2Connection(ctx, c); err != nil {
			return nil, err
		}
	}
	settings, status := c.Settings, c.Status
	next.OAuth2, next.OAuth2Status = &settings, &status
	return changed, nil
}

// normalSettings makes empty and nil lists and maps compare equal.
func normalSettings(o OAuth2Settings) OAuth2Settings {
	if len(o.Scopes) == 0 {
		o.Scopes = nil
	}
	if len(o.AuthParams) == 0 {
		o.AuthParams = nil
	}
	return o
}
