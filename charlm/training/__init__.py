"""Training: the trainer, the clock and schedule, the budget recipe, clipping, tf.distribute,
monitors and the loss plot. Imports text/, models/ and the ground.
"""
