"""torch_deploy: the runtime of tsgen's deployment projects, versioned and installed beside torch.

What a generated project calls, one module each (none of them is imported here: ``python -m torch_deploy
--cmakedir`` must answer without importing torch):

* ``torch_deploy.artifacts``: the artifact format (model files, tensor files) in Python;
* ``torch_deploy.formats``: the list of exported formats and what each is checked against (stdlib);
* ``torch_deploy.export``, ``verify``, ``bench``, ``predict``, ``triton_repository``, ``bundle``: the project's
  commands, run as ``python -m torch_deploy <command>`` (see ``python -m torch_deploy --help``);
* ``torch_deploy.discover``: libtorch discovery and the package checks (stdlib);
* ``torch_deploy.device``: the device a model runs on, and whether this machine has it (stdlib);
* ``torch_deploy.reference``: model.pt's reference outputs on a GPU;
* ``torch_deploy.staging``: the one atomic replacement of a folder, for every folder the runtime writes (export's
  artifacts, the Triton repository) (stdlib);
* the C++ library and its CMake package, compiled in the project's build: ``include/``, ``src/``, ``cmake/`` beside
  this file (``python -m torch_deploy --cmakedir``).
"""

__version__ = "0.2.0"
