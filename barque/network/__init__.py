"""Networking: network namespaces, bridges and veths, nftables, IPAM and the embedded DNS."""
