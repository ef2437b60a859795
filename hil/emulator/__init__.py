"""Emulated boards: the same wires as silicon (ptys, a fake J-Link library, UDP), never a side door."""
