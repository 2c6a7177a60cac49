"""What the demo's parents and students write in "Ý kiến, đề xuất khác": every theme of the
codebook, typed as people type them (with and without accents, a few misspelt, some with a
phone number or an e-mail the workbooks must mask), and the "no comment" answers that are most
of what a real form collects."""

from __future__ import annotations

#: Answers that say nothing: the comment mart does not count them.
NO_COMMENT = (
    "Không có ý kiến.",
    "không có ý kiến",
    "Không",
    "ko",
    "ok",
    "Không có",
    "Đồng ý",
    ".",
    "ko co y kien",
)

PARENT_COMMENTS = (
    *NO_COMMENT,
    "Nhà trường cần bổ sung thêm cây xanh và sân chơi cho các con.",
    "Đề nghị nhà trường tăng cường trao đổi với phụ huynh qua Zalo.",
    "Cảm ơn các thầy cô đã tận tình với các cháu.",
    "Mong nhà trường giảm bớt các khoản thu đầu năm.",
    "Phòng học hơi nóng, đề nghị lắp thêm quạt.",
    "Nhà vệ sinh cần được dọn thường xuyên hơn.",
    "nha ve sinh ban, con khong dam di, mong truong sua som",
    "cac khoan dong gop dau nam nhieu qua, phu huynh kho khan",
    "Đầu năm thu nhiều khoản quá: quỹ lớp, quỹ hội, tiền máy lạnh. Mong công khai thu chi.",
    "Cô chủ nhiệm vận động các cháu đi học thêm ở nhà cô, phụ huynh rất ngại.",
    "day them hoc them nhieu qua, con khong co thoi gian nghi ngoi",
    "Bữa ăn bán trú còn ít thịt, con về kêu đói. Mong nhà trường xem lại thực đơn.",
    "Suất ăn bán trú chưa đảm bảo, đề nghị kiểm tra an toàn thực phẩm.",
    "Con bị bạn bắt nạt trong giờ ra chơi, mong nhà trường quan tâm hơn.",
    "Cổng trường giờ tan học ùn tắc, không an toàn cho các cháu.",
    "Thầy Hùng hay quát mắng học sinh, con rất sợ. Liên hệ tôi 0912 345 678.",
    "Mong giáo viên nhẹ nhàng hơn với các cháu, con về kể cô la mắng cả lớp.",
    "Nhà trường thông báo qua Zalo muộn, nhiều khi phụ huynh không kịp chuẩn bị.",
    "Mong có sổ liên lạc điện tử để phụ huynh nắm tình hình học tập của con. "
    "Email: phuhuynh.lop3a@gmail.com",
    "Sỉ số lớp đông quá, hơn 45 cháu một lớp, cô không kèm hết được.",
    "lop dong qua, 50 hoc sinh mot lop",
    "Chương trình học nặng, bài tập về nhà nhiều, con thức khuya.",
    "Phương pháp dạy tiếng Anh chưa phù hợp, con học mãi không nói được.",
    "Con tiến bộ nhiều, mạnh dạn và tự tin hơn. Cảm ơn cô giáo chủ nhiệm Mai.",
    "Mong nhà trường tổ chức thêm hoạt động trải nghiệm, dã ngoại cho các con.",
    "Thủ tục nhập học còn rườm rà, phải đi lại nhiều lần.",
    "Cơ sở vật chất xuống cấp, bàn ghế cũ, phòng học thiếu ánh sáng.",
    "Đề nghị nhà trường làm thêm mái che ở sân trường cho các con tránh nắng.",
    "Gia đình rất yên tâm khi gửi con ở trường, các cô rất chu đáo.",
    "Trường nên có thêm chỗ gửi xe đạp điện cho học sinh lớn.",
    "Mong trường giữ nếp chào cờ đầu tuần như năm trước.",
    # misspelt ("vê" for "vệ"): caught by "nước rửa tay" all the same
    "nhà vê sinh hôi, thiếu nước rửa tay",
)

STUDENT_COMMENTS = (
    *NO_COMMENT,
    "Em mong trường có thêm câu lạc bộ thể thao.",
    "Thư viện nên mở cửa cả buổi trưa ạ.",
    "Em cảm ơn thầy cô.",
    "Mong nhà trường sửa lại máy chiếu ở các phòng học.",
    "Nhà vệ sinh nữ hay hỏng khóa, em mong được sửa ạ.",
    "Căng tin bán đồ ăn đắt mà không ngon.",
    "Thầy cô giảng dạy dễ hiểu, em tiến bộ nhiều.",
    "Lớp em có bạn hay bị trêu chọc, bắt nạt, em mong thầy cô để ý.",
    "em thay hoc them nhieu qua, toi nao cung di hoc",
    "Lich thi va kiem tra dày qua, em bi ap luc",
    "Em muốn có thêm hoạt động ngoại khóa và văn nghệ.",
    "Lớp học nóng, quạt hỏng lâu rồi chưa sửa.",
)

LOW_COMMENTS = (
    "Cơ sở vật chất xuống cấp, phòng học dột khi trời mưa.",
    "Các khoản thu chưa được công khai rõ ràng.",
    "Giáo viên ít trao đổi với gia đình.",
    "Nhà vệ sinh bẩn và hôi, các cháu nhịn đi vệ sinh cả buổi.",
    "Cô giáo nặng lời với học sinh, phụ huynh đã phản ánh nhưng chưa thay đổi. SĐT 0987.654.321",
    "Con bị đánh ở trường mà không ai báo cho gia đình.",
    "Bữa trưa bán trú ít, cơm khô, đề nghị thay đơn vị nấu ăn.",
    "Ép học thêm, ai không học thì bị cô cho điểm thấp.",
    "si so lop qua dong, phong hoc chat",
)
