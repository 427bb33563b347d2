#!/usr/bin/env python3
"""The same `init` job with the official Python SDK (`infisicalsdk`, pinned by bench/report.py):
log in with Universal Auth, list the secrets of one environment and path (references expanded,
imports included, the SDK's cache off), write one file per secret (mode 0440) into OUT_DIR.

    sdk_init.py API_URL CLIENT_ID CLIENT_SECRET_FILE PROJECT_ID ENV OUT_DIR
"""
import os
import sys

from infisical_sdk import InfisicalSDKClient


def main():
    api_url, client_id, secret_file, project_id, env, out_dir = sys.argv[1:7]
    with open(secret_file) as f:
        client_secret = f.read().strip()
    client = InfisicalSDKClient(host=api_url, cache_ttl=None)
    client.auth.universal_auth.login(client_id=client_id, client_secret=client_secret)
    result = client.secrets.list_secrets(
        project_id=project_id,
        environment_slug=env,
        secret_path="/",
        expand_secret_references=True,
        include_imports=True,
    )
    os.makedirs(out_dir, exist_ok=True)
    for secret in result.secrets:
        path = os.path.join(out_dir, secret.secretKey)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o440)
        with os.fdopen(fd, "w") as f:
            f.write(secret.secretValue)


if __name__ == "__main__":
    main()
