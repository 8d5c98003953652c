package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"referrals/storage"
)

// tokenCommand is `referrals token`: it prints a bearer token that a
// server started with the same --jwt-secret accepts, for trying the API
// locally as an admin or as a partner organization. Production tokens come
// from an identity provider (--jwks-url).
func tokenCommand(args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("referrals token", flag.ContinueOnError)
	secret := fs.String("secret", "", "the server's --jwt-secret (env JWT_SECRET)")
	role := fs.String("role", "admin", "admin or partner")
	org := fs.String("org", "", "the caller's organization id; required for a partner")
	subject := fs.String("sub", "", "the caller (token subject); default local-<role>")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	issuer := fs.String("iss", "", "the server's --jwt-issuer, if it requires one")
	audience := fs.String("aud", "", "the server's --jwt-audience, if it requires one")
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q", fs.Arg(0))
	}
	if *secret == "" {
		*secret = getenv("JWT_SECRET")
	}
	switch {
	case *secret == "":
		return errors.New("token: give --secret (or JWT_SECRET): the server's --jwt-secret")
	case *role != string(storage.RoleAdmin) && *role != string(storage.RolePartner):
		return fmt.Errorf("token: --role %q is neither admin nor partner", *role)
	case *role == string(storage.RolePartner) && *org == "":
		return errors.New("token: a partner token needs --org, its organization id")
	case *ttl <= 0:
		return fmt.Errorf("token: --ttl must be positive, got %s", *ttl)
	}
	if *org != "" {
		if err := storage.CheckOrganizationID(*org); err != nil {
			return fmt.Errorf("token: --org: %w", err)
		}
	}
	if *subject == "" {
		*subject = "local-" + *role
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": *subject, "role": *role, "iat": now.Unix(), "exp": now.Add(*ttl).Unix()}
	if *org != "" {
		claims["org"] = *org
	}
	if *issuer != "" {
		claims["iss"] = *issuer
	}
	if *audience != "" {
		claims["aud"] = *audience
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(*secret))
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	_, err = fmt.Fprintln(out, signed)
	return err
}

// tokenStatus is the exit status of the token command that returned err,
// which it prints to stderr: 0 when it printed a token or the usage it
// was asked for (--help), 2 for a mistake.
func tokenStatus(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintln(stderr, err)
		return 2
	}
}
