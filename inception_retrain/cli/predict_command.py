"""`inception-retrain predict`: image files, or slides tiled and classified, against TF Serving
or a local SavedModel; predictions as a table, CSV or JSON lines, on stdout or a file."""
import contextlib
import os
import sys

from inception_retrain.pipeline import config as config_lib


def run(args, load_config) -> int:
    """predict: image files through client.run, or slides (--heatmap/--tiles) tile by tile."""
    from inception_retrain.serving import client

    model_name = args.model_name or config_lib.PipelineConfig().model_name
    try:
        missing = [path for path in args.paths if not os.path.exists(path)]
        if missing:  # before any model loads or any output file is created
            raise client.PredictError(f"{missing[0]}: no such file or folder")
        if args.heatmap or args.tiles:
            if args.output_format != "table" or args.output:
                raise client.PredictError("-o/--format and --output apply to image files; "
                                          "--heatmap and --tiles write their own files")
            return _predict_slides(args, model_name, load_config)
        with _prediction_writer(args) as writer:
            code = client.run(args.paths, args.protocol, args.server, model_name,
                              version=args.version, batch_size=args.batch_size, k=args.top_k,
                              emit=writer.write, warn=lambda line: print(line, file=sys.stderr),
                              model_path=args.model)
        if args.output:
            print(f"[predict] {writer.count} prediction(s) written to {args.output}",
                  file=sys.stderr)
        return code
    except client.PredictError as err:
        print(f"predict error: {err}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _prediction_writer(args):
    """predict's writer, on stdout or on the --output file (a local file the user named)."""
    from inception_retrain.cli import predict_output

    if not args.output:
        yield predict_output.PredictionWriter(sys.stdout, args.output_format, args.top_k)
        return
    try:
        stream = open(args.output, "w", encoding="utf-8", newline="")
    except OSError as err:
        from inception_retrain.serving import client

        raise client.PredictError(f"--output {args.output}: {err.strerror or err}") from err
    with stream:
        yield predict_output.PredictionWriter(stream, args.output_format, args.top_k)


def _predict_slides(args, model_name: str, load_config) -> int:
    """predict --heatmap/--tiles: whole-slide images tiled and classified tile by tile."""
    from inception_retrain.cli import slide_predict
    from inception_retrain.serving import client

    if args.model:
        model_dir = client.local_model_dir(args.model, args.version)
        print(f"[predict] local SavedModel {model_dir} (serving_default, no server)",
              file=sys.stderr)
        predictor = client.local_predictor(model_dir)
    else:
        predictor = client.predict_rest if args.protocol == "rest" else client.predict_grpc
    server = args.server or (client.DEFAULT_REST if args.protocol == "rest"
                             else client.DEFAULT_GRPC)
    return slide_predict.run(args.paths, lambda images: predictor(server, model_name, images,
                                                                  args.version),
                             args.heatmap, args.tiles, load_config(args).data.ingest_options(),
                             batch_size=args.batch_size,
                             warn=lambda line: print(line, file=sys.stderr))
