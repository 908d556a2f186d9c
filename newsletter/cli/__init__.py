"""The ``newsletter`` command: shared objects in ``app``, every command registered in ``main``."""
