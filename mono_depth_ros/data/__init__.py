"""Dataset readers and ROS 2 bag I/O (ROS-free)."""

from .datasets import (DatasetError, KittiFrame, NYUTest, Sample, SevenScenes, open_dataset,
                       parse_frames)

__all__ = ["DatasetError", "KittiFrame", "NYUTest", "Sample", "SevenScenes", "open_dataset",
           "parse_frames"]
