"""Converters from public datasets (BAIR, RoboNet, KITTI) and plain videos to episode stores."""
