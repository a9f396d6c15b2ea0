"""A tiny Django project answering fixed token-shaped JSON: the floor under any Django token endpoint."""
