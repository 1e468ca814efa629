"""Dataset readers, joint augmentations and ROS 2 bag I/O (ROS-free).

Every reader yields :class:`Sample`; :func:`open_dataset` picks the reader from the layout.
"""

from .augment import AugmentConfig, JointAugment
from .bag_dataset import BagDataset
from .cityscapes import Cityscapes
from .datasets import (DatasetError, KittiFrame, NYUTest, Sample, SevenScenes, open_dataset,
                       parse_frames, read_intrinsics, readers)
from .generic import ImageDepthFolder
from .kitti import KittiRaw, project_velodyne
from .nyu import NYULabeled, NYUSync
from .synthia import Synthia

__all__ = ["AugmentConfig", "BagDataset", "Cityscapes", "DatasetError", "ImageDepthFolder",
           "JointAugment", "KittiFrame", "KittiRaw", "NYULabeled", "NYUSync", "NYUTest", "Sample",
           "SevenScenes", "Synthia", "open_dataset", "parse_frames", "project_velodyne",
           "read_intrinsics", "readers"]
