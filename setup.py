"""fairseq-compactemb: compact token embeddings and output layers as a fairseq --user-dir plugin.

torch and fairseq are deliberately NOT in install_requires: pip would otherwise pull a second
(CUDA) torch, and the PyPI fairseq does not import on Python 3.11. `make test` / `make demo`
(scripts/install.sh) install both the right way; see README.md.
"""
from setuptools import find_packages, setup

setup(
    name="fairseq-compactemb",
    version="0.1.0",
    description="Adaptive input, DeFINE and slim embeddings / output layers for fairseq",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["fairseq_compactemb", "fairseq_compactemb.*"]),
    # the slim output layer's C++ kernel is compiled at first use (torch.utils.cpp_extension)
    package_data={"fairseq_compactemb.modules": ["kernels/*.cpp"]},
    install_requires=["numpy", "sacrebleu", "sentencepiece"],
    entry_points={
        "console_scripts": [
            "fairseq-compactemb-user-dir = fairseq_compactemb.user_dir:main",
        ]
    },
)
