"""RQ job functions (`worker.jobs`) and the worker entry point (`python -m worker`)."""
