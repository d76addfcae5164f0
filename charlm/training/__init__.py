"""Training: the trainer's loop and, each in its module, the compiled step, the checkpointed
state, the NaN roll-back, the metrics rows and samples, the console; the clock and schedule,
the budget recipe, clipping, tf.distribute, monitors and the loss plot. Imports text/, models/
and the ground.
"""
