"""Vietnamese labels of the published workbooks: levels, Likert answers, dimensions, sheet
names, thresholds, alert severities and statuses, ledger states; the feedback's rule names
and reasons."""

import re

#: Level codes (schools.csv) in report order, with the names leadership reads.
LEVEL_LABELS: dict[str, str] = {
    "MN": "Mầm non",
    "TH": "Tiểu học",
    "THCS": "Trung học cơ sở",
    "THPT": "Trung học phổ thông",
    "GDTX": "Giáo dục thường xuyên",
}

#: The canonical Likert labels (DOMAIN.md), 1–5: report headers here and the blank form's
#: dropdown (flows.publish.template).
LIKERT_LABELS: dict[int, str] = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}

#: Dimension names where no questionnaire names them (DOMAIN.md), and the short forms used as
#: chart categories and matrix rows.
DIMENSION_LABELS: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận dịch vụ giáo dục",
    "CSVC": "Cơ sở vật chất, trang thiết bị dạy học",
    "MOI_TRUONG": "Môi trường giáo dục",
    "HOAT_DONG": "Hoạt động giáo dục",
    "PHAT_TRIEN": "Sự phát triển và tiến bộ của người học",
    "CHUNG": "Hài lòng chung",
    "MONG_DOI": "Mức đáp ứng mong đợi (%)",
}
DIMENSION_SHORT: dict[str, str] = {
    "TIEP_CAN": "Tiếp cận",
    "CSVC": "Cơ sở vật chất",
    "MOI_TRUONG": "Môi trường",
    "HOAT_DONG": "Hoạt động",
    "PHAT_TRIEN": "Sự phát triển",
    "CHUNG": "Hài lòng chung",
}
#: The 0–100 expectation item's dimension in the marts (warehouse.marts.EXPECTATION_DIMENSION).
EXPECTATION = "MONG_DOI"
#: Label of the published overall rate: the mean of the five dimension rates.
FIVE_MEAN_LABEL = "Bình quân 5 tiêu chí"

SUMMARY_SHEET = "Tổng hợp"
DIMENSION_SHEET = "Theo tiêu chí"
QUESTION_SHEET = "Theo câu hỏi"
SCHOOL_SHEET = "Theo trường"
SERVICE_SHEET = "Dịch vụ giáo dục"
PAPI_SHEET = "PAPI"
YOY_SHEET = "So sánh năm trước"
ALERT_SHEET = "Cảnh báo"
INFO_SHEET = "Thông tin"
COMMENT_SHEET = "Ý kiến"

#: Figures from fewer respondents than this are written as SUPPRESSED (DOMAIN.md, Privacy).
MIN_RESPONDENTS = 5
SUPPRESSED = "<5"

#: What each threshold (``flows.alerts.Thresholds``, khaosat.yaml ``thresholds:``) means, for
#: the "Thông tin" sheet. The workbooks colour and flag with the same thresholds the alert
#: rules use, so a cell is red exactly when its alert is.
THRESHOLD_LABELS: dict[str, str] = {
    "pct_satisfied_red": "Tỷ lệ hài lòng dưới mức này: mức đỏ",
    "pct_satisfied_amber": "Tỷ lệ hài lòng dưới mức này: mức vàng (mục tiêu quốc gia 2025)",
    "mean_score_red": "Điểm trung bình dưới mức này: mức đỏ",
    "item_pct_dissatisfied_red": "Tỷ lệ không hài lòng của một câu hỏi từ mức này: mức đỏ",
    "min_respondents": "Dưới số phiếu này: mẫu nhỏ, chưa đủ để kết luận",
    "wilson_z": "Hệ số z của khoảng tin cậy Wilson cho mẫu nhỏ",
    "yoy_drop_points": "Giảm so với năm trước từ mức này (điểm %): cảnh báo",
    "papi_pct_yes_min": "Chỉ số PAPI dưới mức này (% Có): cảnh báo",
    "service_total_min": "Dịch vụ dưới số điểm này (trên 80): cảnh báo",
    "service_criterion_poor": "Tiêu chí dịch vụ từ số điểm này trở xuống (Kém = 0): cảnh báo",
    "min_response_share": "Số phiếu dưới tỷ lệ này so với số học sinh: cảnh báo",
    "max_rejected_share": "Tỷ lệ giá trị bị loại của một nguồn trên mức này: cảnh báo",
}

#: Labels of the "Thông tin" rows that carry the run stamp: the only cells that differ between
#: two runs over the same data.
STAMP_LABELS = ("Lần chạy (run id)", "Bắt đầu lần chạy", "Số liệu tính đến")

SEVERITY_LABELS = {"red": "Đỏ", "amber": "Vàng", "info": "Thông tin"}
ALERT_STATUS_LABELS = {"open": "Đang mở", "acknowledged": "Đã ghi nhận", "resolved": "Đã xử lý"}
SCOPE_LABELS = {"school": "Trường", "unit": "Đơn vị", "province": "Tỉnh"}

LEDGER_LABELS = {
    "loaded": "Đã nạp",
    "unchanged": "Không thay đổi (đã nạp trước đó)",
    "failed": "Lỗi, không đọc được",
    "absent": "Chưa có tệp",
    None: "Chưa xử lý",
}

# ---------------------------------------------------------------------------------------------
# What a school's feedback says: rule names, columns that are not questions, reasons.

#: Every rule a rejection or a feedback row can carry (the suites' in expectations/, the
#: parser's, the load's and the feedback's own) as a principal reads it. The code itself stays
#: beside it in a narrow "Mã" column, for the data officer.
RULE_LABELS: dict[str, str] = {
    "likert_unreadable": "Không đọc được mức hài lòng",
    "likert_out_of_range": "Mức hài lòng ngoài thang 1–5",
    "percent_unreadable": "Không đọc được tỷ lệ %",
    "percent_out_of_range": "Tỷ lệ % ngoài khoảng 0–100",
    "yesno_unreadable": "Không đọc được câu trả lời Có/Không",
    "yesno_invalid": "Câu trả lời Có/Không không hợp lệ",
    "level_unreadable": "Không đọc được mức đánh giá",
    "level_invalid": "Mức đánh giá không hợp lệ",
    "kind_unexpected": "Câu trả lời sai loại",
    "question_code_unknown": "Câu hỏi không có trong mẫu phiếu",
    "service_duplicate": "Dịch vụ bị kê khai hai lần",
    "service_missing": "Thiếu tên dịch vụ",
    "submitted_outside_window": "Phiếu gửi ngoài thời gian khảo sát",
    "unreadable_timestamp": "Không đọc được dấu thời gian",
    "formula_without_value": "Công thức chưa có giá trị",
    "duplicate_response": "Phiếu trùng lặp",
    "control_characters": "Ô có ký tự lạ",
    "source_unusable": "Tệp không dùng được",
    "unknown_column": "Cột không khớp câu hỏi nào",
    "missing_question": "Thiếu cột của câu hỏi",
    "renamed_column": "Cột có lẽ bị đổi tiêu đề",
}

#: Columns of a submission that are not questions of the form, by the code parse gives them.
COLUMN_LABELS: dict[str, str] = {
    "TIMESTAMP": "Dấu thời gian",
    "EMAIL": "Địa chỉ email",
    "SERVICE": "Tên dịch vụ",
}

# Why a file could not be used, from the one-line English message of fetch and read (kept
# as it is in the ledger and `khaosat status`, for the officer), in the school's words. The
# first pattern found in the message answers; the message's own words never reach the school.
_REASON_PATTERNS: tuple[tuple[str, str], ...] = (
    ("password-protected", "Tệp có đặt mật khẩu nên không mở được"),
    ("the file is empty", "Tệp rỗng, không có nội dung"),
    ("holds no data", "Tệp không có dữ liệu: mọi trang tính đều trống"),
    (
        "unknown encoding",
        "Tệp CSV không lưu ở dạng UTF-8 nên chữ có dấu không đọc được; "
        "hãy lưu lại bằng “CSV UTF-8”",
    ),
    (
        "damaged utf",
        "Tệp CSV có ký tự ở bảng mã khác nên chữ có dấu không đọc được; "
        "hãy lưu lại bằng “CSV UTF-8”",
    ),
    ("excel 2003 xml", "Tệp là bảng tính XML của Excel 2003, không đọc được; lưu lại thành .xlsx"),
    ("web page", "Tệp là trang web (HTML) mang tên bảng tính, không phải bảng tính"),
    ("not a spreadsheet", "Tệp không phải là bảng tính (Excel, ODS hoặc CSV)"),
    ("not readable as csv", "Tệp CSV không đọc được"),
    ("more than the limit", "Tệp quá lớn so với giới hạn của hệ thống"),
    ("larger than the limit", "Tệp quá lớn so với giới hạn của hệ thống"),
    ("over the limit", "Tệp quá lớn so với giới hạn của hệ thống"),
    ("zip bomb", "Tệp có cấu trúc bất thường nên bị từ chối"),
    ("xml bomb", "Tệp có cấu trúc bất thường nên bị từ chối"),
    ("no header row", "Không tìm thấy dòng tiêu đề của mẫu phiếu trong trang tính"),
    ("holds the headers", "Không trang tính nào có dòng tiêu đề của mẫu phiếu"),
    ("not found; the file has sheets", "Không tìm thấy trang tính đã đăng ký"),
    ("damaged", "Tệp bị hỏng, không mở được"),
    ("cannot read", "Không đọc được bảng tính"),
    ("cannot be read", "Không đọc được bảng tính"),
    ("outside the campaign folder", "Tệp nằm ngoài thư mục của đợt khảo sát nên không được đọc"),
    ("not answering", "Không đọc được tệp do ổ đĩa hoặc mạng không phản hồi"),
    ("google", "Không tải được bảng tính Google"),
)
_FOUND = re.compile(r"(?:; found|\(first cells:) (.+?)\)?$")
#: A message no pattern knows.
REASON_OTHER = "Không đọc được tệp"


def reason_label(rule: str, reason: str) -> str:
    """The Vietnamese a school reads for a rejection's ``reason``.

    The suites' and the parser's reasons are Vietnamese already; a file that could not be used
    (``source_unusable``) carries fetch's or read's English message, told by its pattern
    (REASON_OTHER if none fits).
    """
    if rule != "source_unusable":
        return reason
    folded = reason.casefold()
    for pattern, label in _REASON_PATTERNS:
        if pattern in folded:
            # A sheet without the form's headers: what its first cells hold (quoted, masked)
            # shows the school which sheet or file it sent instead.
            found = _FOUND.search(reason)
            if found and found.group(1) != "no text at all":
                return f"{label}; các ô đầu tiên: {found.group(1)}"
            return label
    return REASON_OTHER


def rule_label(rule: str) -> str:
    """The Vietnamese name of ``rule``; an unknown code as it is (a new suite's rule)."""
    return RULE_LABELS.get(rule, rule)
