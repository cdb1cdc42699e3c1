# itergpt: the default configuration (python train.py config/train_default.py).
# Every line is an assignment over train.py's globals; the command line can override them
# again with --key=value.

out_dir = 'out'
eval_interval = 100
eval_iters = 8
log_interval = 10

batch_size = 16
block_size = 32
gradient_accumulation_steps = 1

n_layer = 2
n_head = 2
n_embd = 32
dropout = 0.0

learning_rate = 1e-3
max_iters = 300
weight_decay = 1e-1
beta1 = 0.9
beta2 = 0.99
grad_clip = 1.0
warmup_iters = 10
lr_decay_iters = 300
min_lr = 1e-4
