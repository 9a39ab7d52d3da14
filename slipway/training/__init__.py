"""Keras model builders, tf.data input, the resumable trainer and distribution setup."""
