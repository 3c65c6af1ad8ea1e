"""`cagereid keys`: make a long-lived CURVE key pair for `serve` or a `camera`."""
from __future__ import annotations

import argparse

HELP = "Make a CURVE key pair (NAME.key public, NAME.key_secret 0600) for cagereid serve or a camera"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write NAME.key and NAME.key_secret to")
    p.add_argument("--name", required=True, help="the key's name: serve's, or the camera's name (cam1), which "
                   "serve accepts this camera's frames under (1-64 letters, digits, _ . -)")
    p.add_argument("--force", action="store_true", help="replace an existing key pair of that name")


def run(args: argparse.Namespace) -> int:
    from stream.security import write_keypair

    public, secret = write_keypair(args.out, args.name, force=args.force)
    print(f"public key: {public}\nsecret key: {secret} (mode 0600; never copy it to another machine)")
    print("serve:  cagereid serve --keys SERVE_SECRET --allow FOLDER_OF_CAMERA_PUBLIC_KEYS ...\n"
          "camera: cagereid camera --keys CAMERA_SECRET --server-key SERVE_PUBLIC --name CAMERA_NAME ...")
    return 0
