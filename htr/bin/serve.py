"""Serve a model over HTTP: a web page to drop line images on, and a JSON API.

    htr serve --model exp/ocr_train/model.zip                 # http://127.0.0.1:8000/
    curl -F image=@line.png http://127.0.0.1:8000/recognize  # the fields of `htr recognize --json`

Requests that arrive together are decoded together in the batched search (up to --max_batch; a
batch waits at most --max_wait_ms for requests still being uploaded, a lone request not at all;
--max_batch 1 turns batching off). The model decodes as its pack says, with the options of `htr
recognize` (htr.decode.model_options); every search option overrides for all requests.
Uploads stay in memory: the server writes no file. It binds to 127.0.0.1 unless told otherwise;
the log (stderr) has one line per request and per batch.
"""
import argparse
import logging
import signal

from htr.decode import model_options
from htr.errors import UserError, run_tool
from htr.serve.server import RecognitionService, is_loopback, make_server
from htr.serve.upload import Limits

log = logging.getLogger("htr.serve")


def get_parser():
    p = argparse.ArgumentParser(prog="htr serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    model_options.add_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one; the log says which)")
    p.add_argument("--max_batch", type=int, default=16, help="most requests decoded together (1: no batching)")
    p.add_argument("--max_wait_ms", type=float, default=50.0,
                   help="how long the first request of a batch may wait for others on their way")
    p.add_argument("--max_upload_mb", type=float, default=Limits.max_upload_bytes / 2 ** 20)
    p.add_argument("--max_image_pixels", type=int, default=Limits.max_image_pixels)
    p.add_argument("--max_image_side", type=int, default=Limits.max_image_side)
    p.add_argument("--max_frames", type=int, default=Limits.max_frames,
                   help="most feature frames of one image (a very wide image is refused before decoding)")
    p.add_argument("--io_timeout", type=float, default=60, help="seconds a stalled upload may wait (then 408)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.max_batch < 1 or args.max_wait_ms < 0:
        raise UserError(f"--max_batch must be >= 1 and --max_wait_ms >= 0 (got {args.max_batch}, {args.max_wait_ms})")
    limits = Limits(int(args.max_upload_mb * 2 ** 20), args.max_image_pixels, args.max_image_side, args.max_frames)
    service = RecognitionService(model_options.recognizer(args), " + ".join(map(str, args.model)), limits, args.max_batch, args.max_wait_ms)
    try:
        server = make_server(service, args.host, args.port, args.io_timeout)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    if not is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach this machine can use the server", args.host)
    host, port = server.server_address[:2]
    log.info("serving %s on http://%s:%d/ (batches of up to %d, waiting %g ms)", service.model_name, host, port,
             args.max_batch, args.max_wait_ms)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        server.server_close()
        service.close()
    return 0


def stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    raise KeyboardInterrupt  # serve_forever returns, and the finally clause closes the socket and batcher


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
