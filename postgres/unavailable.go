package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/envvault/envvault/vault"
)

// SQLSTATEs that say the server cannot serve the session now, besides
// class 08 (connection exception): it is shutting down or starting up.
const (
	adminShutdown = "57P01"
	crashShutdown = "57P02"
	cannotConnect = "57P03"
)

// errUnavailable is what every store method returns, wrapping the driver's
// error, when PostgreSQL cannot be reached: the API answers it 503 with
// Retry-After and the dashboard a page saying so.
var errUnavailable = vault.Errorf(vault.EUNAVAILABLE, "the database cannot be reached now: retry later")

// unavailable turns err into EUNAVAILABLE (still wrapping err, for the
// logs) if it says the database cannot be reached, by type and SQLSTATE
// only (never by message text), and returns any other error unchanged: a
// vault error, the caller's own cancellation, and the server's answers to
// a statement. A transaction whose connection broke was rolled back by the
// server, except when COMMIT itself was in flight: then it either fully
// happened (with its audit event) or not at all.
func unavailable(err error) error {
	if err == nil || !lostConnection(err) {
		return err
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}

func lostConnection(err error) bool {
	var ve *vault.Error
	if errors.As(err, &ve) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08":
			return true
		case pe.Code == adminShutdown, pe.Code == crashShutdown, pe.Code == cannotConnect:
			return true
		}
		return false
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
