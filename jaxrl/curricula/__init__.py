"""Curricula (unsupervised environment design) compiled with the agent: level buffer, level
scores, and the curriculum algorithms (``dr``, ``plr``, ``robust-plr``, ``accel``, ``sfl``)."""
