"""Training: :class:`~.loop.TrainConfig` and the one loop (:mod:`.loop`), the flags shared by the two training
commands (:mod:`.run_flags`), the stores a run opens (:mod:`.intent_stores`), memory readings
(:mod:`.process_memory`), and the commands :mod:`.train` and :mod:`.hiphop_srgnn`."""
