"""Test-split evaluation (the evaluate stage): bicubic, the SRResNet and SRGAN baselines (when
trained), DPSRGAN's pretrained generator and DPSRGAN, side by side with the paper's numbers.
One job a module:

- :mod:`~dpsrgan.evaluation.methods`: the compared methods, their row order, which are required;
- :mod:`~dpsrgan.evaluation.lpips`: whether LPIPS can run here (no download), and its network;
- :mod:`~dpsrgan.evaluation.evaluator`: the per-batch function (``BatchEvaluator``): test rows →
  every method's SR image, its metrics and its forward time;
- :mod:`~dpsrgan.evaluation.run`: the generators from their checkpoints, and the per-image
  metrics of a split through Ray Data or in-process (``evaluate_split``);
- :mod:`~dpsrgan.evaluation.costs`: parameter counts and GFLOPs of each method (and of the
  published layouts);
- :mod:`~dpsrgan.evaluation.summary`: the DVC metrics, per-method means (``summarize``);
- :mod:`~dpsrgan.evaluation.table`: the Markdown table laid out like the paper's (``paper_table``);
- :mod:`~dpsrgan.evaluation.grid`: the labelled sample grid, 1:1 centre windows;
- :mod:`~dpsrgan.evaluation.report`: everything the stage writes, put together (``evaluate``).

Conventions: metrics are computed in fp32 whatever the CPU could do in bf16, since a benchmark
number must not depend on the machine; timings are wall-clock per image of the forward pass on
the evaluating actor (no decode, no metric), a rough guide rather than a benchmark — on a busy
box concurrent actors share cores.
"""
