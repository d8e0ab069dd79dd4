"""An example waimai-bridge plugin for a generic "canonical JSON over HMAC" platform."""
