"""From frames to 3D joints: sources, pose estimation, joint layouts, OpenPose reading, 2D->3D lifting,
synthetic walkers. Imports nothing from `cages`, `stream` or `offline`."""
