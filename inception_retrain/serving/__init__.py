"""The TF Serving side: the version directories TF Serving serves from (publish, prune, rollback),
the client that sends it images (REST and gRPC), and the Kubernetes manifests in k8s/. No TFX
import; the Pusher and the Evaluator's served-model baseline use versions.py."""
