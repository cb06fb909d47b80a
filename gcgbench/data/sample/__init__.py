"""The bundled synthetic sample: scenes (`scenes`) written in the upstream dataset layouts (`coco`, `vqa`,
`captioning`), built once into a cache folder (`root.sample_root`)."""

from gcgbench.data.sample.root import DEFAULT_IMAGE_COUNT, sample_root, write_sample

__all__ = ["DEFAULT_IMAGE_COUNT", "sample_root", "write_sample"]
