"""Export the generator for runtimes without PyTorch: ONNX (ONNX Runtime, TensorRT, mobile) and
OpenVINO IR (Intel/AMD CPUs), optionally int8-quantised with NNCF.

Modules, one job each: ``metadata`` (the generator config and provenance stored in the file),
``onnx`` (torch → .onnx), ``openvino`` (.onnx → .xml/.bin), ``runtime`` (run an exported file
with ONNX Runtime or OpenVINO; no torch), ``verify`` (exported vs torch on the same inputs),
``samples`` (calibration and held-out image pairs), ``quantize`` (NNCF int8 with a quality
gate), ``build`` (the whole ``dpsrgan export`` flow: source → temp files → checks → rename).
"""
