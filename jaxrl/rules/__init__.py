"""Learned update rules (LPG, TA-LPG; Oh et al. 2020, Jackson et al. 2024): the rules and the
hand-set A2C rule (``lpg``), the agent they train (``agent``, registered as ``lpg`` and ``ta-lpg``)."""
