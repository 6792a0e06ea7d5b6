"""compress: pruning and quantization passes that turn a trained model directory into deployable variants."""
