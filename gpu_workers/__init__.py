import os

# OpenMP threads that spin while they wait steal the CPU from everything else on the host:
# the encoder thread that overlaps the next job's denoising, other workers, the web server.
# Measured on the 2-core development machine: a toy-model training step went from about
# 8 s to 0.5 s under load with passive waiting. Must be set before torch is imported; an
# operator's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
