"""``SandboxKernelManager``: a kernel manager whose every kernel starts in the sandbox.

It changes two public extension points of jupyter_client, nothing else: its kernel spec
manager (:class:`SandboxKernelSpecManager`) names the ``tlcourse-sandbox`` provisioner in the
metadata of every kernel spec it returns, and its transport is ``ipc`` (Unix sockets, which
the provisioner puts in a short private folder that the sandbox keeps writable).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning.factory import KernelProvisionerFactory
from traitlets import CaselessStrEnum, default

from tlcourse.grading.sandbox.provisioner import PROVISIONER_NAME

# The provisioner is found by its entry point (pyproject.toml); where tlcourse runs from a
# checkout without being installed there is none, and the factory learns it here.
KernelProvisionerFactory.provisioners.setdefault(
    PROVISIONER_NAME,
    EntryPoint(
        PROVISIONER_NAME,
        "tlcourse.grading.sandbox.provisioner:SandboxProvisioner",
        KernelProvisionerFactory.GROUP_NAME,
    ),
)


class SandboxKernelSpecManager(KernelSpecManager):
    """Kernel specs as installed, each with the sandbox as its provisioner."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = super().get_kernel_spec(kernel_name)
        spec.metadata = {
            **spec.metadata,
            "kernel_provisioner": {"provisioner_name": PROVISIONER_NAME},
        }
        return spec


class SandboxKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernels run in ``SandboxProvisioner``'s sandbox."""

    transport = CaselessStrEnum(
        ["tcp", "ipc"], default_value="ipc", help="ipc: the sandbox has no network."
    ).tag(config=True)

    @default("kernel_spec_manager")
    def _sandbox_kernel_spec_manager(self) -> KernelSpecManager:
        return SandboxKernelSpecManager(data_dir=self.data_dir, parent=self)
