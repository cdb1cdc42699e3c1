# itergpt: a shorter run that overrides only a few of train.py's defaults
# (python train.py config/train_quick.py); everything else comes from train.py.

eval_interval = 100
max_iters = 200
lr_decay_iters = 200
n_layer = 2
dropout = 0.0
