"""`framecast generate "a prompt" --wait` — make a video from the command line.

Needs FRAMECAST_API_KEY (or --api-key) and FRAMECAST_URL (or --url, default
http://127.0.0.1:8000).
"""

import argparse
import os
import sys

from .client import ApiError, Client

BAR_WIDTH = 30


def _bar(video: dict) -> str:
    progress = video.get("progress") or {}
    percent = progress.get("percent", 0)
    filled = round(BAR_WIDTH * percent / 100)
    return f"\r{video['status']:<10} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="framecast", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("FRAMECAST_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("FRAMECAST_API_KEY", ""))
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="submit a video")
    generate.add_argument("prompt")
    generate.add_argument("--wait", action="store_true", help="show progress and download the MP4")
    generate.add_argument("--output", "-o", help="where to write the MP4 (default: <id>.mp4)")
    for name, kind in (("model", str), ("negative-prompt", str), ("seed", int), ("width", int), ("height", int),
                       ("num-frames", int), ("fps", int), ("steps", int), ("guidance", float)):
        generate.add_argument(f"--{name}", type=kind)
    commands.add_parser("models", help="list the models you can use")
    options = parser.parse_args(argv)
    if not options.api_key:
        parser.error("an API key is needed: set FRAMECAST_API_KEY or pass --api-key")
    client = Client(options.url, options.api_key)
    try:
        if options.command == "models":
            for model in client.models():
                print(f"{model['id']:<20} {model['name']}")
            return 0
        params = {
            key.replace("-", "_"): value
            for key, value in vars(options).items()
            if key in {"model", "negative_prompt", "seed", "width", "height", "num_frames", "fps", "steps", "guidance"}
            and value is not None
        }
        video = client.create_video(options.prompt, **params)
        print(f"video {video['id']}: {video['price_credits']} credits, {video['status']}", file=sys.stderr)
        if not options.wait:
            print(video["id"])
            return 0
        video = client.wait(video["id"], on_progress=lambda v: print(_bar(v), end="", file=sys.stderr, flush=True))
        print(file=sys.stderr)
        if video["status"] != "succeeded":
            print(f"The video {video['status']}: {video.get('error') or 'no reason given'}", file=sys.stderr)
            return 1
        path = options.output or f"{video['id']}.mp4"
        with open(path, "wb") as file:
            file.write(client.download(video))
        print(path)
        return 0
    except ApiError as error:
        print(f"framecast: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
