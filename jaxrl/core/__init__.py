"""The pure layer: a training run as one pure function of (key, hyperparameters, environment
parameters) (``train.make_train``), the algorithm contract it is built from (``contract``),
environments by name with their settings (``environments``), and the one value parser
(``values``) and distributions (``distributions``) that settings are read with."""
