"""Training: the objectives, the loop (EMA, checkpoints, resume), the trained-model cache
(`zoo.get_model`), memoised results and several-process training."""
