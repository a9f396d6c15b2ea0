import json

from tests.conftest import basic, jwks_verify, post_token


def test_basic_token(make_client, http):
    client, secret = make_client(allowed_scopes=["read"])
    response = post_token(http, {"grant_type": "client_credentials"}, authorization=basic(client.client_id, secret))
    assert response.status_code == 200, response.content
    body = json.loads(response.content)
    claims = jwks_verify(http, body["access_token"])
    assert claims["sub"] == client.client_id
