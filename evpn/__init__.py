"""evpn: the sans-IO core of evpn-speaker (codec, RIB, MAC-VRFs, IP-VRFs, configuration model)."""
