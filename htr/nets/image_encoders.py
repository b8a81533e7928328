"""The seed architectures' encoders, as registry choices (`encoder: crnn | flor | crnn_lite | resnet`).

- crnn: ResNet feature encoder + BiLSTM (Puigcerver / Retsinas et al.); with `model_conf:
  shortcut_ctc_weight` the CNN features also feed a CTC shortcut head (Retsinas et al. 2022).
- flor: gated convolutional network + BiGRU (Flor et al. 2020, Bluche-style gates), ~0.8M parameters.
- crnn_lite: spatial transformer (slant/slope correction) + depthwise-separable convolutions + BiLSTM.
- resnet: the ResNet feature encoder alone with positional encoding, for an attention decoder
  (img2seq, FPHTR-style: `decoder: transformer`, `ctc_weight: 0.0`). `flatten: 2d` keeps the
  feature map's rows apart (one vector per cell, 2-D positional encoding: PageEncoder) for whole
  pages; `stem_stride: 2` halves the resolution at the first convolution (4x cheaper).
Each divides the width by 4 by default (`time_pool`: the width pooling of each stage).
"""
from torch import nn

from htr.errors import ConfigError
from htr.nets.image_cnn import GatedConv, ImageEncoder, PageEncoder, ResBlock, SeparableConv, SpatialTransformer


def pool(time):
    return nn.MaxPool2d((2, time), (2, time))


def resnet_cnn(channels=(32, 64, 128, 256), blocks=(1, 2, 2), time_pool=(2, 2, 1), stem_stride=1):
    layers = [nn.Conv2d(1, channels[0], 7, stride=stem_stride, padding=3, bias=False), nn.BatchNorm2d(channels[0]),
              nn.ReLU()]
    c = channels[0]
    for stage, (c_out, n, t) in enumerate(zip(channels[1:], blocks, time_pool)):
        for _ in range(n):
            layers.append(ResBlock(c, c_out))
            c = c_out
        if stage < len(blocks) - 1 or t > 1:
            layers.append(pool(t))
    return nn.Sequential(*layers), c


def crnn(input_size, channels=(32, 64, 128, 256), blocks=(1, 2, 2), time_pool=(2, 2, 1), proj_units=256,
         rnn_units=256, rnn_layers=2, dropout_rate=0.2):
    cnn, c = resnet_cnn(channels, blocks, time_pool)
    return ImageEncoder(input_size, cnn, c, proj_units, "lstm", rnn_units, rnn_layers, dropout_rate)


def flor(input_size, channels=(16, 32, 40, 48, 56, 64), time_stride=(2, 2, 1, 1, 1, 1),
         height_stride=(2, 2, 2, 1, 2, 1), rnn_units=128, rnn_layers=2, dropout_rate=0.2):
    layers, c = [], 1
    for i, (c_out, t, h) in enumerate(zip(channels, time_stride, height_stride)):
        layers += [nn.Conv2d(c, c_out, 3, stride=(h, t), padding=1), nn.PReLU(c_out), nn.BatchNorm2d(c_out)]
        if i < len(channels) - 1:
            layers.append(GatedConv(c_out))
        if i >= 2 and dropout_rate > 0:
            layers.append(nn.Dropout2d(dropout_rate))
        c = c_out
    return ImageEncoder(input_size, nn.Sequential(*layers), c, 2 * rnn_units, "gru", rnn_units, rnn_layers,
                        dropout_rate)


def crnn_lite(input_size, channels=(16, 32, 64, 96, 128), time_pool=(2, 2, 1), rnn_units=128, rnn_layers=2,
              dropout_rate=0.2, stn=True):
    layers = [nn.Conv2d(1, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU()]
    c = channels[0]
    for i, c_out in enumerate(channels[1:]):
        layers.append(SeparableConv(c, c_out))
        c = c_out
        if i < len(time_pool):
            layers.append(pool(time_pool[i]))
    return ImageEncoder(input_size, nn.Sequential(*layers), c, 2 * rnn_units, "lstm", rnn_units, rnn_layers,
                        dropout_rate, stn=SpatialTransformer() if stn else None)


def resnet(input_size, output_size=256, channels=(32, 64, 128, 256), blocks=(1, 2, 2), time_pool=(2, 2, 1),
           dropout_rate=0.1, flatten="1d", stem_stride=1):
    if flatten not in ("1d", "2d"):
        raise ConfigError(f"flatten: expected 1d (lines) or 2d (pages), got {flatten!r}")
    cnn, c = resnet_cnn(channels, blocks, time_pool, stem_stride)
    if flatten == "2d":
        return PageEncoder(input_size, cnn, c, output_size, dropout_rate=dropout_rate)
    return ImageEncoder(input_size, cnn, c, output_size, dropout_rate=dropout_rate, pos_enc=True)
