// mtls_clientcredentials fetches a token with the client credentials grant over mutual TLS
// (RFC 8705 §2): the client authenticates with its certificate and sends only client_id in
// the body, no secret.
//
// Environment: TOKEN_URL, CLIENT_ID, CERT_FILE, KEY_FILE, CA_FILE (the server's CA), SCOPE
// (optional, space-separated).  Prints {"access_token", "token_type", "expiry"} as JSON, or
// the error to stderr with exit status 1.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	cert, err := tls.LoadX509KeyPair(os.Getenv("CERT_FILE"), os.Getenv("KEY_FILE"))
	if err != nil {
		fail(err)
	}
	caPEM, err := os.ReadFile(os.Getenv("CA_FILE"))
	if err != nil {
		fail(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		fail(fmt.Errorf("no certificate in CA_FILE %s", os.Getenv("CA_FILE")))
	}
	httpClient := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots},
		},
	}
	config := clientcredentials.Config{
		ClientID:  os.Getenv("CLIENT_ID"),
		TokenURL:  os.Getenv("TOKEN_URL"),
		Scopes:    strings.Fields(os.Getenv("SCOPE")),
		AuthStyle: oauth2.AuthStyleInParams, // client_id in the body; the secret is empty, so not sent
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, httpClient)
	token, err := config.Token(ctx)
	if err != nil {
		fail(err)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{
		"access_token": token.AccessToken, "token_type": token.TokenType, "expiry": token.Expiry,
	})
}
